"""Video reading and writing, in one place, with PyAV.

PyAV binds FFmpeg's own libraries and its wheels carry them, H.264 (x264), VP9 (libvpx), AAC
and Opus encoders included, so ``pip install`` is the whole set-up: no ffmpeg binary to find,
no hand-written container code. It decodes whatever FFmpeg decodes, gives every frame its
timestamp (so a variable frame rate is seen, not guessed) and copies audio packets into the new
file untouched. (imageio-ffmpeg and moviepy shell out to an ffmpeg binary; OpenCV cannot carry
audio.)

Reading checks a clip before any work: a video stream with a decoder (not an image: a photo
renamed .mp4, an animated GIF, a sound file's cover art), frames within the pixel limit, a known
constant frame rate, no rotation, a first frame; it then yields frames at the working size while
checking that they keep the rate and that none are missing. Frames are taken in square pixels: an
anamorphic clip (a sample aspect ratio other than 1, as on DVDs) is resampled to the size it is
shown at, so brush strokes are not stretched and every player shows the output right. A clip
that states no frame count (Matroska) is checked against the duration it states instead. Writing
goes to a temporary file renamed into place, so a failed clip leaves no partial file; audio an
output cannot hold is re-encoded at a sample rate and channel layout its encoder takes. Every problem is a
:class:`VideoError` (one over the pixel limit, the images' :class:`ImageError`), one line naming
the file; a failure to write the output is a :class:`WriteError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from torch import Tensor

from adain.core.atomicfile import atomic_path
from adain.core.errors import ImageError
from adain.media.image_io import MAX_INPUT_PIXELS, MIN_SIDE, check_input_pixels, target_size, to_uint8

# Per output container: FFmpeg format, video encoder and its options (visually lossless H.264;
# VP9 at constant quality), the audio codecs it can hold as they are, and the one it transcodes to.
ENCODERS = {
    ".mp4": ("mp4", "libx264", {"crf": "18", "preset": "medium"}, {"aac", "mp3", "opus", "alac", "flac", "ac3", "eac3"}, "aac"),
    ".webm": ("webm", "libvpx-vp9", {"crf": "32", "b": "0", "row-mt": "1"}, {"opus", "vorbis"}, "libopus"),
}
RATE_TOLERANCE = 0.5  # frames: a timestamp further than this from index / rate means a variable rate
LENGTH_TOLERANCE = 1  # frames: a clip that states only its duration may end this many frame times early (rounding)
STILL_FORMATS = ("image2", "gif", "apng")  # FFmpeg's image demuxers, with every name ending in "_pipe"
DURATION_TAG = re.compile(r"(\d+):(\d+):(\d+(?:\.\d*)?)")  # Matroska's per-track DURATION: H:MM:SS.fraction


class VideoError(ImageError):
    """A video could not be read or written; ``str()`` is one line naming the file."""


class WriteError(VideoError):
    """The output could not be written (the encoder or the disk failed, not the clip). ``reason``
    is the message without the path, for a caller whose path is private (the app's temporary file)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(path, reason)
        self.reason = reason


@dataclass(frozen=True)
class ClipInfo:
    """What a checked clip holds: its frame size as shown, in square pixels (the stored width
    times the sample aspect ratio), constant frame rate, frame count if the container states it,
    the time of its first frame (s), whether it has audio, and, where no frame count is stated
    (Matroska), how long its video lasts (s) if that is stated."""

    width: int
    height: int
    rate: Fraction
    frames: int | None
    start: float
    audio: bool
    duration: float | None = None


def _open(path: Path) -> av.container.InputContainer:
    if path.is_dir():
        raise VideoError(path, "is a directory, not a video")
    try:
        if path.stat().st_size == 0:
            raise VideoError(path, "empty file")
        return av.open(str(path))
    except FileNotFoundError:
        raise VideoError(path, "no such file") from None
    except PermissionError:
        raise VideoError(path, "permission denied") from None
    except av.error.FFmpegError as err:
        raise VideoError(path, f"not a readable video ({err.strerror or err})") from None


def probe(path: str | os.PathLike, max_pixels: int = MAX_INPUT_PIXELS) -> ClipInfo:
    """Check that ``path`` is a clip this module can stylize, decoding its first frame once the
    stream's header shows at most ``max_pixels`` pixels a frame."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(path, container)
        if stream.codec_context is None:
            raise VideoError(path, "unknown video codec: FFmpeg has no decoder for it")
        check_input_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels, path)
        # The nominal rate: the stated average is frames / duration, which a last frame held longer
        # than the others lowers (12 fps read as 11.6), so it only stands in where no rate is guessed.
        rate = stream.guessed_rate or stream.average_rate
        if not rate:
            raise VideoError(path, "no frame rate stated")
        first = next(_decoded(path, container, stream), None)
        if first is None:
            raise VideoError(path, "has no frames")
        if first.rotation:
            raise VideoError(path, f"has rotation metadata ({first.rotation:g}°), which is not supported; rotate the frames first")
        pixel_aspect = Fraction(stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or 1)
        start = float(first.time or 0.0)
        duration = None if stream.frames else _video_seconds(container, stream, start)
        return ClipInfo(round(first.width * pixel_aspect), first.height, Fraction(rate), stream.frames or None,
                        start, bool(container.streams.audio), duration)  # fmt: skip


def _video_stream(path: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The clip's video stream: the first one that is not a picture attached to a sound file
    (cover art); a still image (a photo renamed .mp4, read by FFmpeg's image demuxers) is refused."""
    name = container.format.name
    if name in STILL_FORMATS or name.endswith("_pipe"):
        raise VideoError(path, "not a video (an image)")
    stream = next((s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic), None)
    if stream is None and container.streams.video:
        raise VideoError(path, "not a video (only a still image: cover art)")
    if stream is None:
        raise VideoError(path, "has no video stream")
    return stream


def _video_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream, start: float) -> float | None:
    """How long the video lasts by what a container that states no frame count says: the track's
    DURATION tag (Matroska's, written by FFmpeg and mkvmerge), else the file's duration if the
    video is its only stream (audio may outlast it). Both say where the video ends, hence ``start``."""
    tag = DURATION_TAG.fullmatch(stream.metadata.get("DURATION", ""))
    if tag is not None:
        hours, minutes, seconds = tag.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds) - start
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base - start
    return None


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """FFmpeg's errors while decoding as one :class:`VideoError` naming the clip."""
    try:
        yield
    except av.error.FFmpegError as err:
        raise VideoError(path, f"corrupt or truncated video ({err.strerror or err})") from None


def _decoded(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    with _decoding(path):
        yield from container.decode(stream)


def frame_size(info: ClipInfo, short_side: int, path: str | os.PathLike) -> tuple[int, int]:
    """The output's (width, height): the shorter side ``short_side`` (0 keeps the clip's), each
    side made even, as H.264 and VP9 in 4:2:0 need. A clip kept at an odd size is refused."""
    if short_side <= 0:
        if info.width % 2 or info.height % 2:
            raise VideoError(path, f"odd frame size {info.width}×{info.height}: H.264 and VP9 need even sides; "
                                   "give a content size (not 0) to resize it")  # fmt: skip
        width, height = info.width, info.height
    else:
        width, height = (side - side % 2 for side in target_size(info.width, info.height, short_side))
    if min(width, height) < MIN_SIDE:
        raise VideoError(path, f"too small ({width}×{height} pixels; the shorter side must be at least {MIN_SIDE})")
    return width, height


def check_frame_count(path: str | os.PathLike, frames: int | None, limit: int | None) -> None:
    """A :class:`VideoError` if a clip of ``frames`` frames (None: not known) is over ``limit`` (None: any length)."""
    if limit is not None and frames is not None and frames > limit:
        raise VideoError(path, f"too long: more than {limit:,} frames (the limit)")


class ClipReader:
    """A checked clip, read once from start to end: its frames at the working size (1×3×H×W
    floats in [0, 1]) and its audio packets, in file order (:meth:`__iter__`). Past ``max_frames``
    frames (None: no limit) it stops with a :class:`VideoError`, for clips that do not state their length."""

    def __init__(self, path: str | os.PathLike, info: ClipInfo, size: tuple[int, int], max_frames: int | None = None):
        self.path, self.info, self.size, self.max_frames = Path(path), info, size, max_frames
        self.count = 0  # frames read so far
        self.end = 0.0  # where the video read so far ends (s): its latest packet's time plus duration

    def __iter__(self) -> Iterator[Tensor | av.Packet]:
        with _open(self.path) as container:
            video = _video_stream(self.path, container)
            audio = container.streams.audio[:1]
            with _decoding(self.path):
                for packet in container.demux(video, *audio):
                    if packet.stream.type == "audio":
                        yield packet
                        continue
                    self._note_end(packet)
                    for frame in packet.decode():
                        self._check_time(frame)
                        self.count += 1
                        check_frame_count(self.path, self.count, self.max_frames)
                        width, height = self.size
                        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC")
                        yield torch.from_numpy(rgb.to_ndarray()).permute(2, 0, 1)[None].float().div_(255.0)
        self._check_whole()

    def _note_end(self, packet: av.Packet) -> None:
        """Move :attr:`end` to where ``packet`` ends: its time plus its duration (one frame time if
        it states none). A last frame held longer than the others ends late, not missing frames."""
        if packet.pts is None or packet.time_base is None:
            return
        lasts = packet.duration * packet.time_base if packet.duration else 1 / self.info.rate
        self.end = max(self.end, float(packet.pts * packet.time_base + lasts))

    def _check_whole(self) -> None:
        """Fewer frames than the container states: a truncated clip. Matroska states no count, so
        there the video must reach the end it states, within rounding (a frame time)."""
        if self.info.frames:
            if self.count < self.info.frames:
                raise VideoError(self.path, f"truncated: {self.count} of {self.info.frames} frames")
        elif self.info.duration:
            stated = self.info.start + self.info.duration
            if self.end < stated - LENGTH_TOLERANCE / self.info.rate:
                raise VideoError(self.path, f"truncated: its video ends at {self.end:.2f} s of the {stated:.2f} s it states")

    def _check_time(self, frame: av.VideoFrame) -> None:
        if frame.time is None:
            return
        expected = self.info.start + self.count / self.info.rate
        if abs(frame.time - expected) * self.info.rate > RATE_TOLERANCE:
            raise VideoError(self.path, f"variable frame rate (frame {self.count} at {frame.time:.3f} s, "
                                        f"{float(expected):.3f} s at {float(self.info.rate):g} fps); "
                                        "convert it to a constant rate first")  # fmt: skip


def _encoder_rate(codec: str, rate: int) -> int:
    """The sample rate to encode ``rate`` Hz audio at: itself if the encoder takes it, else the
    lowest one it takes above it, else its highest (Opus takes only 8 to 48 kHz); PyAV resamples."""
    rate, rates = rate or 48000, av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return min((r for r in rates if r > rate), default=max(rates))


def _encoder_layout(codec: str, rate: int, layout: av.AudioLayout) -> av.AudioLayout | str:
    """The channel layout to encode ``layout`` audio in: itself if the encoder opens with it (Opus
    takes mono to 7.1, so 5.1 stays 5.1), else stereo, which PyAV downmixes to."""
    context = av.CodecContext.create(codec, "w")
    context.rate, context.layout, context.format = rate, layout, av.Codec(codec, "w").audio_formats[0]
    try:
        context.open()
    except av.error.FFmpegError:
        return "stereo"
    return layout


class ClipWriter:
    """``with ClipWriter(path, source, info, size) as out:`` a clip at ``size`` and ``info.rate``,
    with ``source``'s audio; ``out.write(frames)`` (N×3×H×W in [0, 1]), ``out.mux(packet)``.
    Written to a temporary file that replaces ``path`` only when the block ends without error."""

    def __init__(self, path: str | os.PathLike, source: str | os.PathLike, info: ClipInfo, size: tuple[int, int]):
        self.path, self.source, self.info, self.size = Path(path), Path(source), info, size
        suffix = self.path.suffix.lower()
        if suffix not in ENCODERS:
            raise VideoError(self.path, f"cannot write video there; use one of {', '.join(sorted(ENCODERS))}")
        self.format, self.codec, self.options, self.copyable, self.audio_codec = ENCODERS[suffix]
        self.frames = 0

    def __enter__(self) -> ClipWriter:
        self._stack = ExitStack()
        try:
            with self._encoding():
                tmp = self._stack.enter_context(atomic_path(self.path))
                self.container = self._stack.enter_context(av.open(str(tmp), "w", format=self.format))
                self.video = self.container.add_stream(self.codec, rate=self.info.rate, options=self.options)
                self.video.width, self.video.height = self.size
                self.video.pix_fmt = "yuv420p"
                self.time_base = 1 / self.info.rate
                self.video.codec_context.time_base = self.time_base
                self.audio_in = self.audio_out = self.decoder = None
                if self.info.audio:
                    self._add_audio()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _add_audio(self) -> None:
        self.audio_in = self._stack.enter_context(av.open(str(self.source))).streams.audio[0]
        if self.audio_in.codec_context is not None and self.audio_in.codec_context.name in self.copyable:
            self.audio_out = self.container.add_stream_from_template(self.audio_in)
        else:  # e.g. AAC into WebM: re-encoded, since the container cannot hold it
            self.decoder = self.audio_in.codec_context
            rate = _encoder_rate(self.audio_codec, self.audio_in.rate)
            layout = _encoder_layout(self.audio_codec, rate, self.decoder.layout)
            self.audio_out = self.container.add_stream(self.audio_codec, rate=rate, layout=layout)

    @contextmanager
    def _encoding(self) -> Iterator[None]:
        try:
            yield
        except (av.error.FFmpegError, OSError) as err:  # OSError: the folder, the disk, renaming into place
            raise WriteError(self.path, f"cannot write ({err.strerror or err})") from None

    def write(self, frames: Tensor) -> None:
        """Encode N×3×H×W frames in [0, 1], in order."""
        for image in frames:
            frame = av.VideoFrame.from_ndarray(to_uint8(image), format="rgb24")
            frame.pts = round(self.info.start / self.time_base) + self.frames
            frame.time_base = self.time_base
            with self._encoding():
                self.container.mux(self.video.encode(frame))
            self.frames += 1

    def mux(self, packet: av.Packet) -> None:
        """Carry an audio packet of the source over: as it is, or re-encoded."""
        if self.audio_out is None or packet.dts is None:
            return
        with self._encoding():
            if self.decoder is None:
                packet.stream = self.audio_out
                self.container.mux(packet)
                return
            with _decoding(self.source):  # a corrupt packet is the clip's fault, not the writer's
                frames = self.decoder.decode(packet)
            for frame in frames:
                frame.pts = None
                self.container.mux(self.audio_out.encode(frame))

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            self._stack.__exit__(kind, error, trace)  # the temporary file is removed
            return
        with self._encoding(), self._stack:  # flushed, closed, renamed into place
            self.container.mux(self.video.encode())
            if self.decoder is not None:
                self.container.mux(self.audio_out.encode())
