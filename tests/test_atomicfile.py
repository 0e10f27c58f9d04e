"""adain.core.atomicfile: the one atomic-write mechanism behind images, decoders, checkpoints, shards and reports."""

import os
import stat

import pytest

from adain.core.atomicfile import atomic_path


def test_a_finished_write_replaces_the_file_readable_by_all(tmp_path):
    target = tmp_path / "new" / "out.txt"  # the folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_readable_by_all_even_when_the_writer_recreates_the_file(tmp_path):
    target = tmp_path / "out.bin"
    old_umask = os.umask(0o077)
    try:
        with atomic_path(target) as tmp:
            tmp.unlink()
            tmp.write_bytes(b"recreated under a private umask")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
