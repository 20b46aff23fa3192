"""Frame sources: video files (PyAV) and folders of images, all yielding timed RGB frames.

Every source yields :class:`TimedFrame` objects whose ``image`` follows the engine's frame
contract (``uint8``, ``(H, W, 3)``, RGB, C-contiguous) and whose timestamp is exact: the
stream's integer ``pts`` and ``time_base`` are kept alongside the float seconds, so a sink can
write the very same timestamps back (variable frame rate included).

Errors a user can cause (missing file, not a media file, no video stream, no frames, a codec
FFmpeg cannot decode) raise :class:`SourceError` with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm"}
)


class VideoError(Exception):
    """Base of the video I/O errors; the message is meant for the user, one line."""


class SourceError(VideoError):
    """A source cannot be opened or read (missing, corrupt, no video stream, no frames)."""


@dataclass(frozen=True)
class TimedFrame:
    """One RGB frame and when it is shown.

    Attributes:
        image: uint8 RGB frame, C-contiguous. It belongs to the consumer: sources never
            reuse it.
        index: position of the frame in the source, from 0 (after a seek: estimated from
            the time and the nominal frame rate).
        pts: presentation timestamp in ``time_base`` units, as stored in the file (``None``
            for sources without one).
        time_base: the unit of ``pts`` (``None`` when ``pts`` is).
        time: presentation time in seconds.

    Shape:
        - image: :math:`(H, W, 3)`
    """

    image: np.ndarray
    index: int
    pts: int | None
    time_base: Fraction | None
    time: float

    @property
    def timestamp(self) -> Fraction | None:
        """The exact presentation time in seconds (``pts * time_base``), if known."""
        if self.pts is None or self.time_base is None:
            return None
        return self.pts * self.time_base


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields timed RGB frames: a file, a camera, a folder of images.

    Attributes:
        width: frame width after any rotation.
        height: frame height after any rotation.
        fps: nominal frames per second (``None`` when unknown).
    """

    width: int
    height: int
    fps: float | None

    def read(self) -> TimedFrame | None:
        """The next frame, or ``None`` at the end of the source."""
        ...

    def __iter__(self) -> Iterator[TimedFrame]:
        """Iterate the remaining frames."""
        ...

    def close(self) -> None:
        """Stop and release the source; idempotent."""
        ...


@dataclass
class ColorInfo:
    """Colour tags of a video stream, in FFmpeg's numbering (``AVCOL_*``; 2 = unspecified).

    Sinks tag their output with these and convert RGB back to YUV with the same matrix and
    range the source was decoded with, so colours survive a round trip.
    """

    range: int = 0
    space: int = 2
    primaries: int = 2
    trc: int = 2

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColorInfo:
        """The tags a decoded frame carries."""
        return cls(
            int(frame.color_range),
            int(frame.colorspace),
            int(frame.color_primaries),
            int(frame.color_trc),
        )


@dataclass
class MediaInfo:
    """What :func:`probe` learns about a video file without decoding more than one frame.

    Attributes:
        path: the file.
        width: frame width as displayed (after rotation).
        height: frame height as displayed.
        coded_width: width as stored.
        coded_height: height as stored.
        rotation: counter-clockwise display rotation in degrees (0, 90, 180 or 270).
        time_base: the video stream's time base.
        frame_rate: average frame rate (``None`` when unknown).
        frames: frame count from the container, or an estimate from the duration (``None``
            when neither is known).
        duration: video duration in seconds (``None`` when unknown).
        pix_fmt: the decoder's pixel format (e.g. ``yuv420p``).
        codec: the video codec name.
        color: the stream's colour tags.
        audio_streams: number of audio streams.
        container: the container format name.
        end: when the file says the video ends, in seconds on the timestamps' timeline
            (``None`` when it does not say); a stream that stops well before is truncated.
    """

    path: Path
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    time_base: Fraction
    frame_rate: Fraction | None
    frames: int | None
    duration: float | None
    pix_fmt: str
    codec: str
    color: ColorInfo = field(default_factory=ColorInfo)
    audio_streams: int = 0
    container: str = ""
    end: float | None = None


def _describe_av_error(exc: BaseException) -> str:
    """A short reason from a PyAV/FFmpeg exception, without the file path it often repeats."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason).strip().rstrip(".")


def open_container(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into a one-line :class:`SourceError`.

    Args:
        path: the file.

    Raises:
        SourceError: missing, a folder, unreadable, or not something FFmpeg can read.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, not a media file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: cannot read the file (permission denied)")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty")
    try:
        return av.open(os.fspath(path), mode="r", metadata_errors="replace")
    except av.error.EOFError:
        raise SourceError(
            f"{path}: the file ends before any video data (truncated or incomplete)"
        ) from None
    except av.error.InvalidDataError:
        raise SourceError(
            f"{path}: not a media file FFmpeg can read (corrupt, truncated or unknown format)"
        ) from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{path}: cannot open ({_describe_av_error(exc)})") from None


def _pick_video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The main video stream: the first that is not cover art."""
    attached = av.stream.Disposition.attached_pic
    candidates = [s for s in container.streams.video if not (s.disposition & attached)]
    if not candidates:
        found = ", ".join(
            f"{s.type} ({s.codec_context.name if s.codec_context else 'unknown codec'})"
            for s in container.streams
        )
        holds = f"it holds {found}" if found else "it holds no streams at all"
        raise SourceError(f"{path}: has no video stream ({holds})")
    stream = candidates[0]
    if stream.codec_context is None:
        raise SourceError(f"{path}: FFmpeg has no decoder for this video codec")
    return stream


def _rotation_steps(rotation: float | int | None) -> int:
    """Quarter turns (counter-clockwise) for a display rotation in degrees."""
    if not rotation:
        return 0
    return round(float(rotation) / 90.0) % 4


def _normalise_rotation(rotation: float | int | None) -> int:
    return 90 * _rotation_steps(rotation)


class _Decoder:
    """Demux + decode of one video stream, surviving bad packets and truncated files.

    A packet the decoder rejects is skipped and counted; a demuxer error ends the stream
    (the file is truncated or damaged past that point). Both are reported in ``problems``.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        self.container = container
        self.stream = stream
        self.decode_errors = 0
        self.corrupt_frames = 0
        self.problems: list[str] = []
        self.demux_failed = False

    def frames(self, max_decode_errors: int) -> Iterator[av.VideoFrame]:
        stream = self.stream
        try:
            for packet in self.container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    self.decode_errors += 1
                    if self.decode_errors == 1:
                        reason = _describe_av_error(exc)
                        self.problems.append(f"undecodable data skipped ({reason})")
                    if self.decode_errors > max_decode_errors:
                        self.problems.append(
                            f"gave up after {self.decode_errors} undecodable packets"
                        )
                        return
                    continue
                for frame in decoded:
                    if frame.is_corrupt:
                        self.corrupt_frames += 1
                    yield frame
        except av.error.FFmpegError as exc:
            # The demuxer cannot go on: the file is cut short or damaged. Keep what decoded
            # and drain the frames the decoder still holds.
            self.demux_failed = True
            self.problems.append(f"stream ends early ({_describe_av_error(exc)})")
            with contextlib.suppress(av.error.FFmpegError):
                yield from stream.codec_context.decode(None)


class _RGBConverter:
    """Any decoded frame → uint8 RGB, upright, at one fixed size."""

    def __init__(self, rotation: int, size: tuple[int, int] | None = None) -> None:
        self.steps = _rotation_steps(rotation)
        self.size = size  # coded (width, height) every frame is brought to
        self.resized = 0

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        kwargs: dict = {}
        if self.size is not None and (frame.width, frame.height) != self.size:
            # A stream that changes size mid-way (rare, or damage) is scaled to its first
            # size: a sink cannot change resolution in the middle of a file.
            kwargs["width"], kwargs["height"] = self.size
            self.resized += 1
        if frame.format.name != "rgb24" or kwargs:
            if frame.color_range:
                # PyAV would otherwise assume limited range; full-range (JPEG) YUV would
                # come out washed out.
                kwargs["src_color_range"] = int(frame.color_range)
            image = frame.to_ndarray(format="rgb24", **kwargs)
        else:
            image = frame.to_ndarray()
        if self.steps:
            image = np.rot90(image, self.steps)
        # Rows are padded in FFmpeg's buffers and rot90 returns a view: one copy makes the
        # frame contiguous and owned by the consumer.
        return np.ascontiguousarray(image)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Open a video file, decode its first frame and describe it.

    Args:
        path: the file.

    Returns:
        The :class:`MediaInfo`.

    Raises:
        SourceError: the file cannot be read as video, or holds no decodable frame.
    """
    path = Path(path)
    container = open_container(path)
    try:
        stream = _pick_video_stream(container, path)
        stream.thread_type = "AUTO"
        decoder = _Decoder(container, stream)
        first = _first_frame_from(decoder.frames(max_decode_errors=50), decoder, path)
        return _media_info(path, container, stream, first)
    finally:
        container.close()


def _media_info(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream, first
) -> MediaInfo:
    rotation = _normalise_rotation(first.rotation)
    w, h = first.width, first.height
    dw, dh = (h, w) if rotation in (90, 270) else (w, h)
    rate = stream.average_rate or stream.guessed_rate or None
    time_base = stream.time_base or Fraction(1, 90000)
    duration = None
    if stream.duration is not None and stream.duration > 0:
        duration = float(stream.duration * time_base)
    elif container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    frames = int(stream.frames) if stream.frames else None
    if frames is None and duration is not None and rate:
        frames = max(1, round(duration * float(rate)))
    return MediaInfo(
        path=path,
        width=dw,
        height=dh,
        coded_width=w,
        coded_height=h,
        rotation=rotation,
        time_base=Fraction(time_base),
        frame_rate=Fraction(rate) if rate else None,
        frames=frames,
        duration=duration,
        pix_fmt=first.format.name,
        codec=stream.codec_context.name,
        color=ColorInfo.of(first),
        audio_streams=len(container.streams.audio),
        container=container.format.name,
        end=_declared_end(container, stream, time_base),
    )


def _parse_clock(text: str) -> float | None:
    """``"00:01:02.500000000"`` → 62.5 (Matroska's per-track DURATION tag)."""
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text.strip())
    if match is None:
        return None
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def _declared_end(
    container: av.container.InputContainer, stream: av.VideoStream, time_base: Fraction
) -> float | None:
    start = float((stream.start_time or 0) * time_base)
    if stream.duration:
        return start + float(stream.duration * time_base)
    tagged = _parse_clock(stream.metadata.get("DURATION", ""))
    if tagged is not None:
        return start + tagged
    # The container's duration covers every stream; it speaks for the video only when the
    # video is all there is.
    if len(container.streams) == 1 and container.duration:
        return (container.duration + (container.start_time or 0)) / av.time_base
    return None


_END = object()


class FileSource:
    """Frames of a video file, decoded by PyAV in a background thread.

    The file is opened and its first frame decoded in the constructor, so a file that cannot
    be read fails here, with a :class:`SourceError`, before any work starts. A decoding
    thread then fills a bounded queue (it blocks when the consumer is slower: files never
    drop frames). Every frame is converted to RGB in that thread, whatever the pixel format
    (8/10-bit, 4:2:0/4:4:4, RGB, palette…), honouring the colour range.

    Timestamps are the stream's own (variable frame rate kept); a frame without one gets
    the previous timestamp plus one nominal frame duration. The display-matrix rotation is
    applied unless ``apply_rotation`` is false (then ``rotation`` tells a sink what to tag).

    Damaged files: packets the decoder rejects are skipped, and a demuxer error ends the
    stream early; ``problems`` lists what happened and ``complete`` turns false, so callers
    can keep what decoded and flag the result (see :mod:`engine.process`).

    Args:
        path: the video file.
        apply_rotation: rotate frames upright according to the display matrix.
        queue_size: frames decoded ahead of the consumer.
        decoder_threads: FFmpeg decoder threads (0: FFmpeg's choice).
        max_decode_errors: undecodable packets tolerated before giving up on the file.

    Attributes:
        info: the :class:`MediaInfo` probed at open.
        width: frame width as yielded.
        height: frame height as yielded.
        fps: nominal frame rate.
        rotation: the file's display rotation in degrees (counter-clockwise).
        frames_read: frames handed to the consumer so far.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        apply_rotation: bool = True,
        queue_size: int = 8,
        decoder_threads: int = 0,
        max_decode_errors: int = 50,
    ) -> None:
        self.path = Path(path)
        self.apply_rotation = apply_rotation
        self._max_decode_errors = max_decode_errors
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ended = False
        self._seeked = False
        self.frames_read = 0
        self._container = open_container(self.path)
        try:
            self._stream = _pick_video_stream(self._container, self.path)
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = decoder_threads
            self._decoder = _Decoder(self._container, self._stream)
            self._frames = self._decoder.frames(max_decode_errors)
            first = _first_frame_from(self._frames, self._decoder, self.path)
            self.info = _media_info(self.path, self._container, self._stream, first)
        except BaseException:
            self._container.close()
            raise
        self.rotation = self.info.rotation
        turned = apply_rotation and self.rotation in (90, 270)
        w, h = self.info.coded_width, self.info.coded_height
        self.width, self.height = (h, w) if turned else (w, h)
        rate = self.info.frame_rate
        self.fps: float | None = float(rate) if rate else None
        self.time_base: Fraction = self.info.time_base
        self.color = self.info.color
        # One frame duration in pts units, to time frames that carry no pts.
        self._step = max(1, round(1 / (rate * self.time_base))) if rate else 1
        self._convert = _RGBConverter(self.rotation if apply_rotation else 0, (w, h))
        self._last_pts: int | None = None
        self._last_time: float | None = None
        self._next_index = 0
        self._start_thread(first)

    # -- consumer side -------------------------------------------------------------------

    def read(self) -> TimedFrame | None:
        """The next frame, or ``None`` at the end of the file.

        Raises:
            SourceError: reading stopped on an unexpected error (message names the file).
        """
        if self._ended:
            return None
        item = self._queue.get()
        if item is _END:
            self._ended = True
            if self._error is not None:
                error, self._error = self._error, None
                raise SourceError(
                    f"{self.path}: decoding failed ({type(error).__name__}: {error})"
                ) from error
            return None
        self.frames_read += 1
        return item

    def __iter__(self) -> Iterator[TimedFrame]:
        """Iterate the remaining frames."""
        while (frame := self.read()) is not None:
            yield frame

    @property
    def problems(self) -> list[str]:
        """What went wrong while decoding (empty for a clean file)."""
        found = list(self._decoder.problems)
        if self._decoder.corrupt_frames:
            found.append(f"{self._decoder.corrupt_frames} frames decoded with errors")
        if self._convert.resized:
            found.append(f"{self._convert.resized} frames changed size and were scaled back")
        if not self._ended or self._seeked or self._decoder.demux_failed:
            return found
        expected = self.info.frames if self._stream.frames else None
        end, last = self.info.end, self._last_time
        step = 1.0 / self.fps if self.fps else 0.1
        if expected is not None and self.frames_read < expected:
            found.append(f"{self.frames_read} of the {expected} frames the file lists decoded")
        elif end is not None and last is not None and last + step < end - max(2 * step, 0.25):
            # Containers without a frame count (Matroska, WebM) still declare a duration.
            found.append(f"the video stops at {last + step:.2f} s of the {end:.2f} s declared")
        return found

    @property
    def complete(self) -> bool:
        """Whether the file decoded cleanly to its end (meaningful once ``read`` returned None)."""
        return not self.problems

    def seek(self, seconds: float) -> None:
        """Continue from the first frame shown at or after ``seconds``.

        Seeks to the key frame before it and decodes forward, so the next frame is exact.
        """
        self._stop_thread()
        self._seeked = True
        self._ended = False
        target = Fraction(seconds).limit_denominator(1 << 30)
        # Timestamps are the stream's own (start offset included), so the target maps to pts
        # directly.
        offset = int(target / self.time_base)
        try:
            self._container.seek(offset, backward=True, stream=self._stream)
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.path}: cannot seek ({_describe_av_error(exc)})") from None
        self._decoder = _Decoder(self._container, self._stream)
        self._frames = self._decoder.frames(self._max_decode_errors)
        self._last_pts = None
        first = None
        for frame in self._frames:
            # Frames between the key frame and the target are decoded only to be dropped.
            if frame.time is None or frame.time >= float(target) - 1e-6:
                first = frame
                break
        start = float((self._stream.start_time or 0) * self.time_base)
        shown = first.time if first is not None and first.time is not None else float(target)
        self._next_index = max(0, round((shown - start) * self.fps)) if self.fps else 0
        if first is None:
            self._queue = queue.Queue(maxsize=self._queue.maxsize)
            self._queue.put(_END)
            return
        self._start_thread(first)

    def close(self) -> None:
        """Stop the decoding thread and close the file; idempotent."""
        self._stop_thread()
        with contextlib.suppress(Exception):
            self._container.close()

    def __enter__(self) -> FileSource:
        """Use in a ``with`` block that closes the source."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the source."""
        self.close()

    # -- decoding thread -----------------------------------------------------------------

    def _start_thread(self, first: av.VideoFrame) -> None:
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=self._queue.maxsize)
        self._thread = threading.Thread(
            target=self._run,
            args=(first, self._stop, self._queue),
            daemon=True,
            name=f"decode:{self.path.name}",
        )
        self._thread.start()

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        # Unblock a producer waiting on a full queue.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            thread.join(timeout=0.05)
        self._thread = None

    def _put(self, item: object, stop: threading.Event, out: queue.Queue) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, first: av.VideoFrame, stop: threading.Event, out: queue.Queue) -> None:
        try:
            frame: av.VideoFrame | None = first
            while frame is not None and not stop.is_set():
                if not self._put(self._timed(frame), stop, out):
                    return
                frame = next(self._frames, None)
        except BaseException as exc:  # handed to the consumer, who raises it in its thread
            self._error = exc
        self._put(_END, stop, out)

    def _timed(self, frame: av.VideoFrame) -> TimedFrame:
        pts = frame.pts
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        self._last_pts = pts
        self._last_time = float(pts * self.time_base)
        index = self._next_index
        self._next_index += 1
        image = self._convert(frame)
        return TimedFrame(image, index, pts, self.time_base, float(pts * self.time_base))


def _first_frame_from(
    frames: Iterator[av.VideoFrame], decoder: _Decoder, path: Path
) -> av.VideoFrame:
    """The first decodable frame, or a SourceError saying why there is none."""
    frame = next(frames, None)
    if frame is None:
        why = f" ({decoder.problems[0]})" if decoder.problems else ""
        raise SourceError(f"{path}: the video stream has no decodable frames{why}")
    return frame


def _natural_key(path: Path) -> list:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a uint8 RGB frame (EXIF orientation applied, alpha dropped).

    Raises:
        SourceError: missing or not an image OpenCV can decode.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths, unlike imread
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not an image OpenCV can decode (corrupt or unknown format)")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class ImageFolderSource:
    """The images of a folder, in natural sort order, as a frame sequence at ``fps``.

    Timestamps are synthetic: frame ``i`` has ``pts = i`` in a time base of ``1/fps``.
    Every image must have the size of the first one.

    Args:
        folder: the folder (not searched recursively).
        fps: the frame rate the sequence is played at.
        suffixes: file name endings that count as images.

    Raises:
        SourceError: the folder is missing or holds no images.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        fps: float = 25.0,
        suffixes: frozenset[str] = IMAGE_SUFFIXES,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: folder not found")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.paths = sorted(
            (p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
            key=_natural_key,
        )
        if not self.paths:
            raise SourceError(f"{self.folder}: no images in this folder")
        self.fps: float | None = float(fps)
        self.time_base = 1 / Fraction(fps).limit_denominator(1001 * 1000)
        self._first = read_image(self.paths[0])
        self.height, self.width = self._first.shape[:2]
        self._next = 0

    def __len__(self) -> int:
        """Number of images."""
        return len(self.paths)

    def read(self) -> TimedFrame | None:
        """The next image, or ``None`` after the last.

        Raises:
            SourceError: an image cannot be decoded or has another size than the first.
        """
        i = self._next
        if i >= len(self.paths):
            return None
        self._next += 1
        image = self._first if i == 0 else read_image(self.paths[i])
        if image.shape[:2] != (self.height, self.width):
            raise SourceError(
                f"{self.paths[i]}: is {image.shape[1]}x{image.shape[0]}, but the folder's "
                f"first image is {self.width}x{self.height}"
            )
        return TimedFrame(image, i, i, self.time_base, float(i * self.time_base))

    def __iter__(self) -> Iterator[TimedFrame]:
        """Iterate the remaining images."""
        while (frame := self.read()) is not None:
            yield frame

    def seek(self, seconds: float) -> None:
        """Continue from the image shown at ``seconds``."""
        self._next = max(0, min(len(self.paths), round(seconds / self.time_base)))

    def close(self) -> None:
        """Nothing to release; present for the :class:`FrameSource` protocol."""
        self._next = len(self.paths)

    def __enter__(self) -> ImageFolderSource:
        """Use in a ``with`` block."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the source."""
        self.close()
