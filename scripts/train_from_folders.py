"""Train a decoder from two folders of images, on one machine: split, shards, training, export, evaluation.

    python scripts/train_from_folders.py --content photos/ --style paintings/ --out runs/mine \\
        -- --trainer.precision bf16-mixed --trainer.max_time 00:01:00:00

1. **Validation split.** About 5 % of the contents and 10 % of the styles are held out by a hash of
   their names (:mod:`adain.training.validation_split`; a name held out is held out in every subfolder), listed in
   ``OUT/validation.txt`` and linked under ``OUT/validation/{content,style}/`` (``sub/a.jpg`` as
   ``sub%2Fa.jpg``). Training never sees them.
2. **Shards** of the rest, ``OUT/shards/{content,style}-NNNNNN.tar`` (``scripts/make_shards.py``,
   images at most ``--short-side`` px, never enlarged); reused while no file was added, removed or changed.
3. **Training**: ``train.py fit`` with ``--config`` (default ``configs/adain.yaml``, and without a GPU
   also ``configs/cpu.yaml`` at the precision this CPU runs fastest, printed with the reason) in ``OUT``, with
   ``data.load_size 0`` (the shards already hold the images at their working size, so nothing is
   enlarged except images under the crop size) and resuming from ``OUT/checkpoints/last.ckpt``
   when there is one: after an interruption, run the same command again. Arguments after ``--``
   go to ``train.py fit`` as they are.
4. **Export**: the finished run writes ``OUT/checkpoints/decoder.safetensors``.
5. **Evaluation** of that decoder on the validation split (``scripts/evaluate.py``) into
   ``OUT/evaluation/``: the three losses for ``--eval-methods``, a table, JSON and a grid (skipped,
   with a word, when a folder is so small that none of its files is held out).

Each stage is printed as the command it runs, so any one can be repeated by hand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from make_shards import find_images, fingerprint, leave_out

from adain.core.atomicfile import atomic_path
from adain.core.commandline import run_main
from adain.core.device import cpu_training_precision
from adain.training.validation_split import VALIDATION_FRACTION, validation_names

ROOT = Path(__file__).resolve().parent.parent
KINDS = tuple(VALIDATION_FRACTION)  # content, style
DEFAULT_EVAL = ["identity", "style", "adain", "adain@0.5"]  # Gatys rows cost minutes per pair: ask for them
SHORT_SIDE = {"gpu": 512, "cpu": 256}  # shards' shorter side: configs/adain.yaml's load size, configs/cpu.yaml's


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", required=True, type=Path, metavar="DIR", help="photos (searched recursively)")
    p.add_argument("--style", required=True, type=Path, metavar="DIR", help="paintings (searched recursively)")
    p.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="the run's folder (split, shards, checkpoints, evaluation)"
    )
    p.add_argument(
        "--config", action="append", metavar="YAML",
        help="train.py config, repeatable (default configs/adain.yaml, and configs/cpu.yaml without a GPU)",
    )  # fmt: skip
    p.add_argument(
        "--short-side", type=int, metavar="PX",
        help=f"largest shorter side in the shards (default {SHORT_SIDE['gpu']}; {SHORT_SIDE['cpu']} with the CPU recipe)",
    )  # fmt: skip
    p.add_argument(
        "--eval-methods", nargs="+", default=DEFAULT_EVAL, metavar="M",
        help="scripts/evaluate.py methods (default " + " ".join(DEFAULT_EVAL) + ")",
    )  # fmt: skip
    p.add_argument("--eval-size", type=int, default=512, metavar="PX", help="evaluation image size (default 512)")
    p.add_argument("train_args", nargs="*", metavar="-- TRAIN_ARGS", help="passed to train.py fit")
    return p


def split(folder: Path, images: list[Path], kind: str, out: Path) -> list[str]:
    """The held-out ones of ``folder``'s ``images`` as paths relative to it: every file whose name is
    held out, in whichever subfolder, linked flat under ``out/validation/kind/`` (see :func:`link_name`)."""
    paths = {p.relative_to(folder).as_posix(): p for p in images}
    held = validation_names(paths, VALIDATION_FRACTION[kind])  # by each file's name, so subfolders do not count
    links = out / "validation" / kind
    links.mkdir(parents=True, exist_ok=True)
    for stale in links.iterdir():
        stale.unlink()
    for relative in held:
        (links / link_name(relative)).symlink_to(paths[relative].resolve())
    return held


def link_name(relative: str) -> str:
    """A file name of its own for each relative path: the path with ``/`` written ``%2F`` (and ``%``
    as ``%25``), so files of one name in two subfolders get two links; a file at the top keeps its name."""
    return relative.replace("%", "%25").replace("/", "%2F")


def write_list(path: Path, held: dict[str, list[str]]) -> None:
    """``validation.txt``: one ``kind/relative path`` per line, sorted."""
    lines = sorted(f"{kind}/{name}" for kind, names in held.items() for name in names)
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def shards_current(index: Path, folder: Path, kept: list[Path], short_side: int) -> bool:
    """Whether ``index`` (a make_shards index) was made at ``short_side`` from exactly the files
    ``kept`` of ``folder``, as they are now (names, sizes, modification times)."""
    if not index.is_file():
        return False
    meta = json.loads(index.read_text())
    return (meta.get("source"), meta.get("short_side"), meta.get("fingerprint")) == (
        str(folder), short_side, fingerprint(kept, folder)
    )


def shard(folder: Path, images: list[Path], kind: str, out: Path, exclude: list[str], short_side: int) -> tuple[list[str], Path]:
    """The make_shards command for one folder (absolute; empty when its shards are current) and their index."""
    prefix = out / "shards" / kind
    index = prefix.parent / f"{kind}.json"
    if shards_current(index, folder, leave_out(images, folder, set(exclude)), short_side):
        return [], index
    listing = out / "validation" / f"{kind}.txt"
    listing.write_text("".join(f"{name}\n" for name in exclude), encoding="utf-8")
    command = [sys.executable, str(ROOT / "scripts" / "make_shards.py"), str(folder), str(prefix)]
    return command + ["--short-side", str(short_side), "--exclude", str(listing)], index


def training_configs(configs: list[str] | None, cuda: bool) -> tuple[list[str], str | None]:
    """``train.py`` arguments for the configs: those given, else adain.yaml, and without CUDA
    cpu.yaml at the precision this CPU runs fastest; and that choice's reason, if one was made."""
    if configs:
        return [a for config in configs for a in ("--config", config)], None
    default = ["--config", str(ROOT / "configs" / "adain.yaml")]
    if cuda:
        return default, None
    precision, channels_last, why = cpu_training_precision()
    chosen = ["--trainer.precision", precision, "--model.channels_last", str(channels_last).lower()]
    return [*default, "--config", str(ROOT / "configs" / "cpu.yaml"), *chosen], f"no GPU: configs/cpu.yaml; {why}"


def run(command: Sequence[str]) -> int:
    """Print ``command``, run it in this folder (where relative paths of the command line and of
    ``TRAIN_ARGS`` lie), return its exit status."""
    print(f"$ {shlex.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for kind in KINDS:
        if not getattr(args, kind).is_dir():
            parser.error(f"{getattr(args, kind)}: no such folder")
    if args.short_side is not None and args.short_side < 1:
        parser.error("--short-side must be at least 1")
    configs, choice = training_configs(args.config, torch.cuda.is_available())
    if choice:
        print(choice, file=sys.stderr)
    short_side = args.short_side or SHORT_SIDE["cpu" if choice else "gpu"]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    folders = {kind: getattr(args, kind).resolve() for kind in KINDS}
    images = {kind: find_images(folders[kind])[0] for kind in KINDS}
    held = {kind: split(folders[kind], images[kind], kind, out) for kind in KINDS}
    write_list(out / "validation.txt", held)
    print("held out for validation: " + ", ".join(f"{len(v)} {k}" for k, v in held.items()), file=sys.stderr)

    patterns = {}
    for kind in KINDS:
        command, index = shard(folders[kind], images[kind], kind, out, held[kind], short_side)
        if command and (status := run(command)):
            return status
        patterns[kind] = str(index.parent / json.loads(index.read_text())["pattern"])

    data = ["--data.content_shards", patterns["content"], "--data.style_shards", patterns["style"], "--data.load_size", "0"]
    train = [sys.executable, "-m", "adain.training.cli", "fit", *configs, *data, "--trainer.default_root_dir", str(out)]
    if status := run([*train, "--ckpt_path", "last", *args.train_args]):
        return status

    empty = [kind for kind in KINDS if not held[kind]]
    if empty:
        print(f"no {' or '.join(empty)} images held out (too few files): evaluation skipped", file=sys.stderr)
        return 0
    decoder = out / "checkpoints" / "decoder.safetensors"
    evaluate = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--decoder", str(decoder), "--size", str(args.eval_size)]
    validation = ["--content", str(out / "validation" / "content"), "--style", str(out / "validation" / "style")]
    return run([*evaluate, *validation, "--methods", *args.eval_methods, "--out", str(out / "evaluation")])


if __name__ == "__main__":
    run_main(main)
