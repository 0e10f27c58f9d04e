"""The app's clip endpoint (/api/stylize-video): infer.py's video path behind the queue, within the server's limits."""

from __future__ import annotations

import asyncio
import builtins
import io
import tempfile
import threading
import time

import av
import httpx2 as httpx
import pytest
from clips import audio_packets, make_clip, still, with_garbled_audio
from fastapi.testclient import TestClient

import adain.media.video_io as videoio
from adain.app import Limits, Stylist, create_app

FORM = {"style_example": "munch_the_scream", "content_size": "0", "style_size": "48"}


def client(model, gallery, **limits) -> TestClient:
    return TestClient(create_app(Stylist(model, Limits(**limits)), gallery))


def post(client: TestClient, data: bytes, name: str = "clip.mp4", **form):
    return client.post("/api/stylize-video", data={**FORM, **form}, files={"content": (name, data, "video/mp4")})


@pytest.mark.parametrize("answer_format, codecs", [("mp4", ["h264", "aac"]), ("webm", ["vp9", "opus"])])
def test_a_clip_comes_back_with_its_rate_frames_and_audio(model, gallery, tmp_path, answer_format, codecs):
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    response = post(client(model, gallery), clip.read_bytes(), format=answer_format, smoothing="0.5")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"video/{answer_format}"
    assert (response.headers["x-frames"], response.headers["x-image-size"]) == ("10", "64x48")
    out = tmp_path / f"out.{answer_format}"
    out.write_bytes(response.content)
    with av.open(str(out)) as answer:
        assert [s.codec_context.name for s in answer.streams] == codecs
        assert answer.streams.video[0].average_rate == 12 and len(list(answer.decode(video=0))) == 10
    if answer_format == "mp4":
        assert audio_packets(out) == audio_packets(clip)  # copied as they were


def test_a_clip_over_the_frame_limit_is_refused_before_any_work(model, gallery, tmp_path, monkeypatch):
    stylized = []
    monkeypatch.setattr(model, "stylize", lambda *args, **kwargs: stylized.append(1))
    response = post(client(model, gallery, max_video_frames=6), make_clip(tmp_path / "in.mp4", frames=10).read_bytes())
    assert response.status_code == 422 and not stylized
    assert response.json()["detail"] == "content video: too long: more than 6 frames (the limit)"


def test_a_clip_that_does_not_state_its_length_is_stopped_at_the_limit(model, gallery, tmp_path):
    clip = make_clip(tmp_path / "in.webm", frames=10)  # WebM states no frame count
    with av.open(str(clip)) as source:
        assert not source.streams.video[0].frames
    response = post(client(model, gallery, max_video_frames=6), clip.read_bytes(), "in.webm")
    assert response.status_code == 422 and response.json()["detail"] == "content video: too long: more than 6 frames (the limit)"


@pytest.mark.parametrize("data, name, message", [
    (b"just some text, not a video\n" * 20, "notes.mp4", "content video: not a readable video"),
    (b"", "empty.webm", "content video: empty file"),
    (still((64, 48), "JPEG"), "photo.mp4", "content video: not a video (an image)"),
])  # fmt: skip
def test_bad_uploads_are_one_line_naming_the_content_not_a_temporary_file(model, gallery, data, name, message):
    response = post(client(model, gallery), data, name)
    detail = response.json()["detail"]
    assert response.status_code == 422 and detail.startswith(message) and "/tmp" not in detail and "\n" not in detail


def test_bad_options_are_refused_as_for_images(model, gallery, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3).read_bytes()
    for form, message in (({"smoothing": "1"}, "smoothing must be in [0, 1)"), ({"alpha": "2"}, "alpha must be in [0, 1]"),
                          ({"format": "gif"}, "mp4"), ({"style_example": "nope"}, "nope")):  # fmt: skip
        response = post(client(model, gallery), clip, **form)
        assert response.status_code == 422 and message in str(response.json()["detail"]), (form, response.text)


def test_a_clip_refused_for_its_frames_names_the_api_field_not_a_flag(model, gallery, tmp_path):
    odd = make_clip(tmp_path / "odd.mkv", size=(63, 47), audio=False).read_bytes()
    response = post(client(model, gallery), odd, "odd.mkv")
    detail = response.json()["detail"]
    assert response.status_code == 422 and detail.startswith("content video: odd frame size 63×47")
    assert "content size" in detail and "--" not in detail


def test_frames_over_the_pixel_limit_are_refused_before_any_work(model, gallery, tmp_path, monkeypatch):
    """The upload limit on pixels holds for a clip's frames as for an image (here a style of 64×48)."""
    stylized = []
    monkeypatch.setattr(model, "stylize", lambda *args, **kwargs: stylized.append(1))
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(96, 64)).read_bytes()
    response = client(model, gallery, max_input_pixels=96 * 64 - 1).post(
        "/api/stylize-video", data={"content_size": "32", "style_size": "32"},
        files=[("content", ("clip.mp4", clip, "video/mp4")), ("style", ("style.png", still((64, 48)), "image/png"))],
    )  # fmt: skip
    assert response.status_code == 422 and not stylized
    assert response.json()["detail"] == "content video: too large (96×64 pixels; limit 6,143)"


def test_a_failure_to_write_the_answer_is_a_500_naming_no_server_path(model, gallery, tmp_path, monkeypatch):
    """The server's own encoder failing (here given a setting it refuses) is not the client's fault."""
    form, codec, options, copyable, audio = videoio.ENCODERS[".webm"]
    monkeypatch.setitem(videoio.ENCODERS, ".webm", (form, codec, {**options, "crf": "bad"}, copyable, audio))
    response = post(client(model, gallery), make_clip(tmp_path / "in.mp4", frames=3).read_bytes(), format="webm")
    assert response.status_code == 500 and response.json() == {"detail": "output video: cannot write (Invalid argument)"}


def test_audio_that_does_not_decode_is_the_clips_fault_not_the_servers(model, gallery, tmp_path):
    """Re-encoding the audio for WebM decodes it: a garbled packet is a 422 naming the upload."""
    clip = with_garbled_audio(make_clip(tmp_path / "in.mp4", frames=3), tmp_path / "garbled.mp4")
    response = post(client(model, gallery), clip.read_bytes(), format="webm")
    detail = response.json()["detail"]
    assert response.status_code == 422 and detail.startswith("content video: corrupt or truncated video"), detail


def test_writing_an_uploaded_clip_to_disk_does_not_hold_up_other_requests(model, gallery, monkeypatch):
    """The clip is written for FFmpeg off the event loop: while a slow disk writes it, the server still answers."""
    real_open, writing, written = io.open, threading.Event(), []

    def slow_disk(file, mode="r", *args, **kwargs):
        if "w" in mode and str(file).startswith(tempfile.gettempdir()):
            writing.set()
            time.sleep(1.0)
            written.append(time.monotonic())
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", slow_disk)  # what pathlib opens with
    monkeypatch.setattr(builtins, "open", slow_disk)
    app = create_app(Stylist(model, Limits()), gallery)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
            files = {"content": ("clip.mp4", b"not a clip " * 100, "video/mp4")}
            upload = asyncio.create_task(client.post("/api/stylize-video", data=FORM, files=files))
            while not (writing.is_set() or upload.done()):  # bounded: the upload is written or refused
                await asyncio.sleep(0.01)
            health = await client.get("/api/health")
            return health, time.monotonic(), await upload

    health, answered_at, upload = asyncio.run(scenario())
    assert health.status_code == 200 and upload.status_code == 422 and len(written) == 1
    assert answered_at < written[0]  # answered while the clip was still being written
