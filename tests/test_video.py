"""Video: clips stylized through the image path, frame rate, count, size and audio kept, flicker
lowered by smoothing the statistics over time, bounded memory, and one-line errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from clips import audio_packets, audio_seconds, frame_image, make_clip, read_frames, still
from PIL import Image
from tqdm import tqdm

import adain.jobs.video as video
import nst.stylize as infer
from adain.core.errors import ImageError
from adain.jobs.flicker import Stabiliser
from adain.jobs.image import load
from adain.jobs.request import ImageSource, Request
from adain.media.video_io import ClipReader, ClipWriter, VideoError, probe

ROOT = Path(__file__).resolve().parent.parent
STYLE = ImageSource.file(ROOT / "examples/style/munch_the_scream.jpg")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "moving.mp4")


def request(path: Path, **options) -> Request:
    return Request(ImageSource.file(path), (STYLE,), style_size=64, content_size=options.pop("content_size", 0), **options)


def stream_facts(path: Path) -> tuple[Fraction, int, tuple[int, int], list[str]]:
    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        frames = list(clip.decode(stream))
        return stream.average_rate, len(frames), (frames[0].width, frames[0].height), [s.codec_context.name for s in clip.streams]


@pytest.mark.parametrize("source, target, codecs, copied", [
    (".mp4", ".mp4", ["h264", "aac"], True),
    (".webm", ".webm", ["vp9", "opus"], True),
    (".mp4", ".webm", ["vp9", "opus"], False),  # WebM cannot hold AAC: re-encoded
])  # fmt: skip
def test_rate_count_size_and_audio_are_kept(st, tmp_path, source, target, codecs, copied):
    clip = make_clip(tmp_path / f"in{source}", frames=10)
    done = video.stylize_video(st, request(clip), tmp_path / f"out{target}", batch_size=3)
    assert (done.frames, done.size, done.rate) == (10, (64, 48), 12)
    assert stream_facts(tmp_path / f"out{target}") == (12, 10, (64, 48), codecs)
    if copied:
        assert audio_packets(tmp_path / f"out{target}") == audio_packets(clip)  # unchanged, packet for packet
    assert abs(audio_seconds(tmp_path / f"out{target}") - audio_seconds(clip)) < 0.03  # one codec frame at most


@pytest.mark.parametrize("sample_rate", [44100, 22050])  # Opus takes 48, 24, 16, 12 or 8 kHz only
def test_audio_at_a_rate_opus_cannot_take_is_resampled_into_webm_at_its_length(st, tmp_path, sample_rate):
    clip = make_clip(tmp_path / "in.mp4", frames=10, sample_rate=sample_rate)
    video.stylize_video(st, request(clip), tmp_path / "out.webm")
    with av.open(str(tmp_path / "out.webm")) as out:
        assert out.streams.audio[0].rate == 48000
    assert abs(audio_seconds(tmp_path / "out.webm") - audio_seconds(clip)) < 0.03  # one codec frame at most


def read_all(clip: Path) -> int:
    """How many frames :class:`ClipReader` yields from a clip, at its size, with all its checks."""
    info = probe(clip)
    return sum(isinstance(item, torch.Tensor) for item in ClipReader(clip, info, (info.width, info.height)))


@pytest.mark.parametrize("held", [2, 12])
def test_a_last_frame_held_longer_keeps_the_clips_rate(st, tmp_path, held):
    """A 12 fps clip of 12 frames whose last frame lasts two or twelve frame times states an
    average of 11.1 or 6.3 fps (frames / duration); it is read and written at 12, in step with its audio."""
    clip = make_clip(tmp_path / "in.mp4", held=held)
    with av.open(str(clip)) as source:
        assert source.streams.video[0].average_rate == Fraction(144, 11 + held)
    done = video.stylize_video(st, request(clip), tmp_path / "out.mp4")
    assert (done.frames, done.rate) == (12, 12) and stream_facts(tmp_path / "out.mp4")[:2] == (12, 12)


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(24000, 1001), Fraction(60000, 1001)])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_ntsc_rates_are_constant_over_a_long_clip(tmp_path, rate, suffix):
    """At 29.97 fps a rate taken as 30 would be half a frame off by frame 500. Matroska (MKV,
    WebM) keeps times in milliseconds and states 59.94 fps as 19001/317: in step over 600 frames."""
    clip = make_clip(tmp_path / f"ntsc{suffix}", frames=600, size=(16, 16), rate=rate, audio=False)
    assert read_all(clip) == 600 and abs(probe(clip).rate - rate) < 1e-4


def untagged(clip: Path) -> Path:
    """``clip`` without Matroska's per-track DURATION tags (renamed in place, as muxers that write
    none leave a file): only the file's duration is left."""
    clip.write_bytes(clip.read_bytes().replace(b"DURATION", b"DURATIOX"))
    return clip


def remuxed(clip: Path, path: Path) -> Path:
    """``clip``'s video packets, as they are (times and durations), in the container ``path`` names."""
    with av.open(str(clip)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return path


@pytest.mark.parametrize("held", [3, 12])
def test_a_matroska_clip_whose_last_frame_is_held_longer_is_whole(tmp_path, held):
    """Matroska states no frame count, only a duration, which here the last frame's own reaches
    (3 or 12 frame times): it is not a clip missing its last frames."""
    clip = remuxed(make_clip(tmp_path / "in.mp4", held=held, audio=False), tmp_path / "held.mkv")
    assert probe(clip).frames is None and read_all(clip) == 12


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
@pytest.mark.parametrize("tagged", [True, False])
def test_a_matroska_clip_whose_audio_outlasts_its_video_is_whole(tmp_path, suffix, tagged):
    """Matroska states no frame count, so a truncated clip is found from its duration; the file's
    duration is that of its longest stream, which here is the audio (3 s against 1 s of video)."""
    clip = make_clip(tmp_path / f"long_audio{suffix}", audio_seconds=3)
    assert read_all(clip if tagged else untagged(clip)) == 12


@pytest.mark.slow
def test_the_example_clip_keeps_its_rate_count_and_six_channel_audio(st, tmp_path):
    """The bundled real clip (H.264 with B-frames, 6-channel AAC, 25 fps) goes through whole."""
    clip = ROOT / "examples/video/big_buck_bunny.mp4"
    done = video.stylize_video(st, request(clip, content_size=32), tmp_path / "bunny.mp4", batch_size=8)
    assert (done.frames, done.size, done.rate) == (132, (56, 32), 25)
    assert stream_facts(tmp_path / "bunny.mp4") == (25, 132, (56, 32), ["h264", "aac"])
    assert audio_packets(tmp_path / "bunny.mp4") == audio_packets(clip)
    with av.open(str(tmp_path / "bunny.mp4")) as out:
        assert out.streams.audio[0].codec_context.channels == 6


def test_six_channel_audio_re_encoded_for_webm_keeps_its_channels(tmp_path):
    """The example clip's AAC 5.1 cannot go into WebM as it is: it becomes Opus in 5.1, not stereo."""
    clip, output = ROOT / "examples/video/big_buck_bunny.mp4", tmp_path / "bunny.webm"
    info = probe(clip)
    with ClipWriter(output, clip, info, (32, 18)) as out:
        for item in ClipReader(clip, info, (32, 18)):
            out.write(item) if isinstance(item, torch.Tensor) else out.mux(item)
    with av.open(str(output)) as done:
        assert (done.streams.audio[0].codec_context.name, done.streams.audio[0].layout.name) == ("opus", "5.1")
    assert abs(audio_seconds(output) - audio_seconds(clip)) < 0.03  # one codec frame at most


def test_content_size_resizes_the_frames_to_even_sides(st, tmp_path, clip):
    done = video.stylize_video(st, request(clip, content_size=30), tmp_path / "small.mp4")  # 40×30
    assert done.size == (40, 30) and stream_facts(tmp_path / "small.mp4")[2] == (40, 30)
    done = video.stylize_video(st, request(clip, content_size=33), tmp_path / "odd.mp4")  # 44×33 → 44×32
    assert done.size == (44, 32)


def test_an_anamorphic_clip_is_stylized_in_square_pixels_at_its_shown_size(st, tmp_path):
    """Stored 48×48 with a sample aspect ratio of 4:3 is shown 64×48: the frames are read
    stretched to that, and the output is that size in square pixels."""
    clip = make_clip(tmp_path / "dvd.mp4", size=(48, 48), pixel_aspect=Fraction(4, 3), audio=False)
    with av.open(str(clip)) as source:
        assert source.streams.video[0].sample_aspect_ratio == Fraction(4, 3)
    info = probe(clip)
    assert (info.width, info.height) == (64, 48)
    read = torch.cat([frame for frame in ClipReader(clip, info, (64, 48)) if isinstance(frame, torch.Tensor)])
    stored = torch.from_numpy(read_frames(clip)).permute(0, 3, 1, 2).float() / 255
    stretched = torch.nn.functional.interpolate(stored, size=(48, 64), mode="bicubic", align_corners=False)
    # 0.013 (4:2:0 chroma, scaled before or after the conversion to RGB); padded to 64 wide instead: 0.037
    assert read.shape == (12, 3, 48, 64) and (read - stretched).abs().mean() < 0.025
    done = video.stylize_video(st, request(clip), tmp_path / "out.mp4")
    assert done.size == (64, 48) and stream_facts(tmp_path / "out.mp4")[2] == (64, 48)
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.streams.video[0].sample_aspect_ratio in (None, 0, 1)
    assert video.stylize_video(st, request(clip, content_size=30), tmp_path / "small.mp4").size == (40, 30)


def test_frames_are_the_image_path_applied_to_each_frame(st, tmp_path, clip):
    """Without smoothing, frame t is StyleTransfer.stylize of frame t, up to H.264's rounding."""
    video.stylize_video(st, request(clip, alpha=0.8), tmp_path / "out.mp4", smoothing=0)
    source = torch.from_numpy(read_frames(clip)).permute(0, 3, 1, 2).float() / 255
    expected = st.stylize(source, st.encode_style(load(STYLE, 64, False).rgb), alpha=0.8)
    got = torch.from_numpy(read_frames(tmp_path / "out.mp4")).permute(0, 3, 1, 2).float() / 255
    assert (got - expected).abs().mean() < 2 / 255


@pytest.mark.slow
def test_every_image_option_works_on_video(st, tmp_path, clip):
    mask = tmp_path / "mask.png"
    from PIL import Image

    Image.fromarray(np.tile((np.arange(64) < 32).astype(np.uint8)[None] * 255, (48, 1))).save(mask)
    second = ImageSource.file(ROOT / "examples/style/van_gogh_irises.jpg")
    for options in ({"mask": ImageSource.file(mask)}, {"style_weights": (0.3, 0.7)}, {"preserve_color": "coral"},
                    {"max_tile": 64, "look_size": 0}, {"look_size": 32}):  # fmt: skip
        styles = (STYLE, second) if "mask" in options or "style_weights" in options else (STYLE,)
        job = Request(ImageSource.file(clip), styles, content_size=0, style_size=64, **options)
        assert video.stylize_video(st, job, tmp_path / "out.mp4").frames == 12, options


def test_the_stabiliser_keeps_still_pixels_takes_moved_ones_and_continues_across_batches():
    torch.manual_seed(0)
    frames = torch.rand(1, 3, 8, 8).repeat(5, 1, 1, 1)
    frames[2:, :, :4] = 1 - frames[2:, :, :4]  # the top half changes at frame 2, then stays
    stylized = torch.rand(5, 3, 8, 8)
    out = Stabiliser(0.8)(frames, stylized)
    assert torch.equal(out[0], stylized[0])  # nothing before it
    assert torch.allclose(out[1], 0.8 * out[0] + 0.2 * stylized[1])  # still: mostly the last output
    moved = (frames[2] - frames[1]).abs().amax(0) > 0.1
    assert torch.allclose(out[2][:, moved], stylized[2][:, moved], atol=1e-6)  # moved: no trail of frame 1
    halves = Stabiliser(0.8)
    assert torch.equal(torch.cat([halves(frames[:2], stylized[:2]), halves(frames[2:], stylized[2:])]), out)
    assert torch.equal(Stabiliser(0.0)(frames, stylized), stylized)


def flicker(frames: np.ndarray, source: np.ndarray) -> float:
    """Mean absolute change between consecutive output frames over the same for the input."""
    out, inp = frames.astype(np.float64), source.astype(np.float64)
    return np.abs(np.diff(out, axis=0)).mean() / np.abs(np.diff(inp, axis=0)).mean()


@pytest.mark.slow
def test_smoothing_lowers_flicker_on_moving_content(st, tmp_path):
    clip = make_clip(tmp_path / "moving.mp4", frames=24, size=(96, 64))
    source = read_frames(clip)
    measured = {}
    for smoothing in (0.0, 0.8):
        video.stylize_video(st, request(clip), tmp_path / f"out{smoothing}.mp4", smoothing=smoothing)
        measured[smoothing] = flicker(read_frames(tmp_path / f"out{smoothing}.mp4"), source)
    assert measured[0.8] < 0.7 * measured[0.0], measured


@pytest.mark.slow
@pytest.mark.parametrize("batch_size, held", [(4, 4), (None, 1)])  # None: the CPU's default, one frame
def test_frames_stream_through_in_batches(st, tmp_path, monkeypatch, batch_size, held):
    """The reader is never more than a batch (plus the encoder's delay) ahead of the writer."""
    clip = make_clip(tmp_path / "long.mp4", frames=40, audio=False)
    gaps, written = [], [0]
    events = video.ClipReader

    class Watched(events):
        def __iter__(self):
            for item in super().__iter__():
                gaps.append(self.count - written[0])
                yield item

    write = video.ClipWriter.write

    def counting(self, frames):
        written[0] += len(frames)
        write(self, frames)

    monkeypatch.setattr(video, "ClipReader", Watched)
    monkeypatch.setattr(video.ClipWriter, "write", counting)
    assert video.stylize_video(st, request(clip), tmp_path / "out.mp4", batch_size=batch_size).frames == 40
    assert max(gaps) == held and written[0] == 40


# -- bad input: one line naming the file, exit 1, no output, the rest still done ------------------------


def bad_clips(folder: Path) -> dict[str, tuple[Path, str]]:
    data = make_clip(folder / "good.mp4", frames=6).read_bytes()
    indexed = make_clip(folder / "indexed.mp4", frames=24, faststart=True, audio=False)
    indexed_data = indexed.read_bytes()
    indexed.unlink()
    cases = {
        "empty": (b"", "empty file"),
        "not a video": (b"just some text, not a video at all\n" * 20, "not a readable video"),
        "corrupt": (data[:48] + bytes(range(256)) * 8, "not a readable video"),
        "truncated": (data[: len(data) * 2 // 3], "not a readable video"),  # its index, at the end, is cut off
        "truncated, index first": (indexed_data[: len(indexed_data) * 2 // 3], "corrupt or truncated video"),
        "unknown codec": (data.replace(b"avc1", b"zzzz"), "unknown video codec"),
        "a photo": (still((64, 48), "JPEG"), "not a video (an image)"),
        "a drawing": (still((64, 48), "PNG"), "not a video (an image)"),
    }
    found = {}
    for name, (content, message) in cases.items():
        path = folder / f"{name.replace(' ', '_').replace(',', '')}.mp4"
        path.write_bytes(content)
        found[name] = (path, message)
    for name, suffix, audio, tagged in (("truncated mkv", ".mkv", True, True), ("truncated webm", ".webm", True, True),
                                        ("truncated, no duration tag", ".mkv", False, False)):  # fmt: skip
        whole = make_clip(folder / f"whole{suffix}", audio=audio)
        whole = whole if tagged else untagged(whole)
        cut = folder / f"{name.replace(' ', '_').replace(',', '')}{suffix}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
        whole.unlink()
        found[name] = (cut, "truncated: ")
    found["an animation"] = (make_gif(folder / "animation.mp4"), "not a video (an image)")
    found["cover art"] = (make_clip(folder / "song.mp4", video=False, cover_art=True, audio_seconds=1), "only a still image: cover art")
    found["no frames"] = (make_clip(folder / "blank.mkv", frames=0, audio_seconds=1), "has no frames")
    found["no video"] = (make_clip(folder / "sound.mp4", video=False, audio_seconds=1), "has no video stream")
    found["variable rate"] = (make_clip(folder / "vfr.mp4", frames=8, variable_rate=True, audio=False), "variable frame rate")
    found["odd size"] = (make_clip(folder / "odd.mkv", size=(63, 47), audio=False), "odd frame size 63×47")
    found["rotated"] = (make_clip(folder / "rotated.mp4", rotation=90, audio=False), "rotation metadata (90°)")
    return found


def make_gif(path: Path) -> Path:
    """An animated GIF of five frames (under ``path``'s name, which may say .mp4)."""
    frames = [Image.fromarray(frame_image(i, (64, 48))) for i in range(5)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


@pytest.mark.slow
def test_every_bad_clip_is_one_line_naming_it(st, tmp_path):
    for name, (path, message) in bad_clips(tmp_path).items():
        with pytest.raises(VideoError) as info:
            video.stylize_video(st, request(path), tmp_path / "out.mp4")
        text = str(info.value)
        assert text.startswith(str(path)) and message in text and "\n" not in text, (name, text)
        assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4*")), name


def test_frames_over_the_pixel_limit_are_refused_from_the_header_before_any_frame_is_read(st, tmp_path, monkeypatch):
    """As an image is: a 96×64 clip under a limit of 6,143 pixels, with a style of 64×48 within it."""
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(96, 64))
    decoded = []
    monkeypatch.setattr(video, "ClipReader", lambda *args: decoded.append(1))
    job = Request(ImageSource.file(clip), (ImageSource(still((64, 48)), "style"),), content_size=32, style_size=32)
    with pytest.raises(ImageError) as info:
        video.stylize_video(st, job, tmp_path / "out.mp4", max_input=96 * 64 - 1)
    assert str(info.value) == f"{clip}: too large (96×64 pixels; limit 6,143)" and not decoded
    assert not (tmp_path / "out.mp4").exists()


def test_a_mask_not_shaped_like_the_frames_is_one_line_naming_it_before_any_frame(st, tmp_path, clip, monkeypatch):
    """As an image's is: a square mask for a 64×48 clip, through the Python API and the command line."""
    mask = tmp_path / "square.png"
    Image.new("L", (40, 40), 255).save(mask)
    second = ImageSource.file(ROOT / "examples/style/van_gogh_irises.jpg")
    decoded = []
    monkeypatch.setattr(video, "ClipReader", lambda *args: decoded.append(1))
    job = Request(ImageSource.file(clip), (STYLE, second), content_size=0, style_size=32, mask=ImageSource.file(mask))
    with pytest.raises(ImageError) as info:
        video.stylize_video(st, job, tmp_path / "out.mp4")
    assert str(info.value).startswith(f"{mask}: the mask is 48×48 px and the content 64×48 px") and not decoded
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_the_cli_reports_each_bad_clip_and_still_does_the_good_ones(tmp_path, decoder_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clips = bad_clips(tmp_path / "in")
    code = infer.main(["--content", str(tmp_path / "in"), "--style", str(STYLE.data), "--decoder", str(decoder_file),
                       "--content-size", "0", "--style-size", "32", "--output-dir", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_stylized_munch_the_scream.mp4"]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(clips) and f"{len(clips) + 1 - len(clips)} of {len(clips) + 1} outputs written" in err
    for path, message in clips.values():
        assert any(str(path) in line and message in line for line in errors), (path, errors)


@pytest.mark.parametrize("output, message", [
    ("out.avi", "cannot write a video there; use one of .mp4, .webm"),
    ("out.png", "cannot write a video there"),
])  # fmt: skip
def test_an_output_nothing_can_write_is_one_line_before_any_work(tmp_path, clip, decoder_file, capsys, output, message):
    code = infer.main(["--content", str(clip), "--style", str(STYLE.data), "--decoder", str(decoder_file), "--output", str(tmp_path / output)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and f"{tmp_path / output}:" in err and not (tmp_path / output).exists()


def test_an_output_that_turns_out_to_be_a_folder_is_one_line_naming_it(st, tmp_path):
    """Through the Python API (the command line refuses it before any work), found when the clip is renamed into place."""
    clip, output = make_clip(tmp_path / "in.mp4", frames=3), tmp_path / "out.mp4"
    output.mkdir()
    with pytest.raises(VideoError) as info:
        video.stylize_video(st, request(clip), output)
    assert str(info.value) == f"{output}: cannot write (Is a directory)" and sorted(tmp_path.iterdir()) == [clip, output]


def test_the_cli_shows_progress_and_a_summary(tmp_path, clip, decoder_file, capsys, monkeypatch):
    class EveryUpdate(tqdm):  # tqdm skips updates less than 0.1 s apart, which fast frames are: draw them all
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, mininterval=0, miniters=1)

    monkeypatch.setattr(infer, "tqdm", EveryUpdate)
    code = infer.main(["--content", str(clip), "--style", str(STYLE.data), "--decoder", str(decoder_file),
                       "--content-size", "0", "--style-size", "32", "--output", str(tmp_path / "out.webm")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and stream_facts(tmp_path / "out.webm")[:3] == (12, 12, (64, 48))
    assert "12/12" in err and "frame/s" in err  # the bar: frames done, rate (and ETA while running)
    assert f"{tmp_path / 'out.webm'}: 12 frames, 64×48 at 12 fps, in " in err and "frames/s)" in err
    for flags, message in ((["--smoothing", "1"], "--smoothing must be in [0, 1)"), (["--method", "gatys", "--smoothing", "0.5"], "applies only to --method adain")):
        with pytest.raises(SystemExit):
            infer.main(["--content", str(clip), "--style", str(STYLE.data), *flags])
        assert message in capsys.readouterr().err
