"""Synthetic test clips, made with PyAV: moving shapes over a gradient, and a sine-tone audio track;
and files that only look like clips (a still image, cover art, audio that does not decode)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# extension: video codec, its pixel format, audio codec (lossless FFV1 in 4:4:4 takes odd sizes)
CODECS = {".mp4": ("libx264", "yuv420p", "aac"), ".webm": ("libvpx-vp9", "yuv420p", "libopus"), ".mkv": ("ffv1", "yuv444p", "aac")}


def frame_image(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i``: a gradient with a red square moving right and a blue disc moving down."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 200 // width + 20, y * 160 // height + 40, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    left = (4 * i) % max(1, width - 16)
    img[8:24, left : left + 16] = (230, 40, 30)
    cy, cx = (3 * i) % height, width * 2 // 3
    img[(y - cy) ** 2 + (x - cx) ** 2 < 49] = (30, 60, 220)
    return img


def make_clip(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    rate: int | Fraction = 12,
    audio: bool = True,
    rotation: float | None = None,
    variable_rate: bool = False,
    video: bool = True,
    audio_seconds: float | None = None,
    faststart: bool = False,
    pixel_aspect: Fraction | None = None,
    sample_rate: int = 48000,
    held: int = 1,
    cover_art: bool = False,
) -> Path:
    """Write a clip: ``frames`` frames (0: a video stream with none), or with ``video=False`` no
    video stream at all; ``variable_rate``: frames at alternating 30/150 ms intervals;
    ``audio_seconds``: the sine tone's length (default: the video's); ``faststart``: an MP4's index
    before its frames (so a truncated copy still opens); ``pixel_aspect``: a sample aspect ratio
    (anamorphic: ``size`` is stored, shown ``pixel_aspect`` times as wide); ``sample_rate``: the
    audio's; ``held``: the last frame lasts ``held`` frame times (the rate stays constant, the
    stated average drops; H.264 only); ``cover_art``: a picture attached to the sound, as a
    music file's cover (with ``video=False``, an .mp4 that is an M4A song)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, pixels, audio_codec = CODECS[path.suffix]
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        stream = out.add_stream(video_codec, rate=rate) if video else None
        if stream is not None:
            stream.width, stream.height = size
            stream.pix_fmt = pixels
            if rotation is not None:
                stream.set_display_rotation(rotation)
            if pixel_aspect is not None:
                stream.codec_context.sample_aspect_ratio = pixel_aspect
            if variable_rate:
                stream.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream(audio_codec, rate=sample_rate) if audio else None
        cover = out.add_stream("png") if cover_art else None
        if cover is not None:
            cover.width, cover.height = size
            cover.pix_fmt = "rgb24"
            cover.disposition = av.stream.Disposition.attached_pic
        clock = 0
        for i in range(frames if stream is not None else 0):
            frame = av.VideoFrame.from_ndarray(frame_image(i, size), format="rgb24")
            if variable_rate:
                frame.pts, frame.time_base = clock, Fraction(1, 1000)
                clock += 30 if i % 2 else 150
            out.mux(stream.encode(frame))
        if stream is not None:
            last = stream.encode()  # the encoder's delayed packets, the last in decoding order at the end
            if held > 1:
                last[-1].duration = held  # in frame times: their time base is 1 / rate
            out.mux(last)
        if sound is not None:
            seconds = audio_seconds if audio_seconds is not None else frames / rate
            total, step, done = int(sample_rate * seconds), sound.codec_context.frame_size or 960, 0
            while done < total:
                t = (np.arange(step) + done) / sample_rate
                samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = sample_rate, done
                out.mux(sound.encode(chunk))
                done += step
            out.mux(sound.encode())
        if cover is not None:
            picture = av.Packet(still(size))
            picture.stream, picture.pts, picture.dts = cover, 0, 0
            out.mux(picture)
    return path


def still(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """Frame 0 as an image file's bytes in Pillow's format ``fmt``: cover art, or a photo renamed as a clip."""
    data = io.BytesIO()
    Image.fromarray(frame_image(0, size)).save(data, fmt)
    return data.getvalue()


def with_garbled_audio(source: Path, path: Path) -> Path:
    """A copy of ``source`` whose audio packets are random bytes of the same sizes and times:
    they copy into a file as they are, but do not decode."""
    rng = np.random.default_rng(0)
    with av.open(str(source)) as clip, av.open(str(path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in clip.streams}
        for packet in clip.demux():
            if packet.dts is None:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == "audio":
                noise = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                noise.pts, noise.dts, noise.duration, noise.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
                packet = noise
            packet.stream = target
            out.mux(packet)
    return path


def read_frames(path: Path) -> np.ndarray:
    """All frames of a clip as T×H×W×3 uint8."""
    with av.open(str(path)) as clip:
        return np.stack([f.to_ndarray(format="rgb24") for f in clip.decode(clip.streams.video[0])])


def audio_packets(path: Path) -> list[bytes]:
    """The payloads of a clip's audio packets, in order."""
    with av.open(str(path)) as clip:
        return [bytes(p) for p in clip.demux(clip.streams.audio[0]) if p.size]


def audio_seconds(path: Path) -> float:
    """How long a clip's audio track plays, from its decoded samples."""
    with av.open(str(path)) as clip:
        stream = clip.streams.audio[0]
        return sum(frame.samples for frame in clip.decode(stream)) / stream.rate
