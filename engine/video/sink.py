"""Sinks: a PyAV video encoder that keeps audio and timing, a PNG-sequence writer, image files.

Every sink writes to a temporary name in the destination folder and renames it to the final
name only in ``close()``, after everything is flushed; ``abort()`` (or an error) deletes the
temporary file. A crash or a cancel therefore never leaves a truncated file under the final
name, and an existing file is only replaced once its replacement is complete.

Formats:

* ``h264`` (libx264) and ``h265`` (libx265, where the PyAV build has it): CRF and preset;
  4:2:0 unless the source is 4:2:2/4:4:4 or a side is odd (4:2:0 needs even sides), then
  the matching 4:2:2/4:4:4 profile. MP4, MOV or MKV.
* ``ffv1`` in MKV: lossless, stored as ``bgr0`` so RGB frames round-trip bit-exactly.
* ``png``: a folder of numbered PNG files plus ``timestamps.txt``.

Audio streams of ``audio_from`` are copied packet by packet when the output container can
hold their codec, else re-encoded (AAC, or the container's own default).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import shutil
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from engine.video.sources import ColorInfo, VideoError, open_container

log = logging.getLogger(__name__)

SINK_CODECS = ("h264", "h265", "ffv1", "png")
ENCODERS = {"h264": "libx264", "h265": "libx265", "ffv1": "ffv1", "png": "png"}
DEFAULT_CRF = {"h264": 18, "h265": 20}
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# Containers each video codec may be written to (suffix → FFmpeg muxer name).
CONTAINERS = {
    "h264": {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"},
    "h265": {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"},
    "ffv1": {".mkv": "matroska"},
}
# Audio codecs to re-encode to when a stream cannot be copied, in order of preference.
_AUDIO_FALLBACKS = ("aac", "libopus", "opus", "mp3", "flac")


class SinkError(VideoError):
    """A sink cannot be created or written (folder unwritable, disk full, codec missing)."""


def codec_available(codec: str) -> bool:
    """Whether this PyAV build can encode ``codec`` (``h264``, ``h265``, ``ffv1``, ``png``)."""
    return ENCODERS.get(codec) in av.codecs_available


def check_codec(codec: str) -> None:
    """Raise :class:`SinkError` unless ``codec`` is known and encodable here."""
    if codec not in ENCODERS:
        raise SinkError(f"unknown codec {codec!r}; choose one of {', '.join(SINK_CODECS)}")
    if not codec_available(codec):
        raise SinkError(
            f"this PyAV/FFmpeg build has no {ENCODERS[codec]} encoder, so {codec} cannot be "
            "written; choose --codec h264 or ffv1"
        )


def choose_pix_fmt(codec: str, width: int, height: int, source_pix_fmt: str | None = None) -> str:
    """The encoder pixel format for RGB frames of this size.

    Args:
        codec: ``h264``, ``h265`` or ``ffv1``.
        width: frame width.
        height: frame height.
        source_pix_fmt: the input's pixel format, whose chroma subsampling is kept.

    Returns:
        ``bgr0`` for FFV1 (exact RGB); for H.264/H.265 ``yuv420p``, ``yuv422p`` or
        ``yuv444p``: the source's subsampling, raised to one the frame size allows.
    """
    if codec == "ffv1":
        return "bgr0"
    src = (source_pix_fmt or "").lower()
    if "444" in src or src.startswith(("rgb", "bgr", "gbr", "argb", "abgr")):
        chroma = 444
    elif "422" in src:
        chroma = 422
    else:
        chroma = 420
    if chroma == 420 and (width % 2 or height % 2):
        chroma = 444  # 4:2:0 halves both sides; an odd side cannot be represented
    if chroma == 422 and width % 2:
        chroma = 444
    return f"yuv{chroma}p"


def temp_path_for(final: Path, tag: str = "part") -> Path:
    """A hidden name beside ``final`` that keeps its suffix (FFmpeg picks the muxer by it)."""
    return final.with_name(f".{final.stem}.{secrets.token_hex(4)}.{tag}{final.suffix}")


def _check_destination(final: Path, overwrite: bool) -> None:
    folder = final.parent
    if not folder.is_dir():
        raise SinkError(f"{folder}: output folder does not exist")
    if final.exists() and not overwrite:
        raise SinkError(f"{final}: already exists (pass --overwrite to replace it)")


def _fsync(path: Path) -> None:
    # Data first, then the rename: after a power cut the final name holds a whole file.
    with contextlib.suppress(OSError), open(path, "rb+") as f:
        os.fsync(f.fileno())


def _publish_file(temp: Path, final: Path, overwrite: bool) -> None:
    if final.exists() and not overwrite:
        raise SinkError(f"{final}: appeared while writing; not replaced (use --overwrite)")
    _fsync(temp)
    os.replace(temp, final)


def _os_reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip()


class _AudioTransfer:
    """Carries the audio streams of an input file into an output container.

    Streams whose codec the output container accepts are copied packet for packet (no
    quality loss, exact duration); the others are decoded and re-encoded. Packets are
    muxed in step with the video (``pump``) so the file stays interleaved.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self.input = open_container(source)
        self.output = output
        self.map: dict[int, tuple[av.stream.Stream, bool]] = {}
        self.notes: list[str] = []
        supported = output.supported_codecs
        for stream in self.input.streams.audio:
            ctx = stream.codec_context
            name = ctx.name if ctx is not None else "unknown"
            if name in supported:
                out = output.add_stream_from_template(stream)
                # Tags are container-specific (mp4a in MP4); let the muxer choose its own.
                with contextlib.suppress(Exception):
                    out.codec_context.codec_tag = 0
                self.map[stream.index] = (out, True)
                continue
            target = next((c for c in _AUDIO_FALLBACKS if c in supported and _encodes(c)), None)
            if ctx is None or target is None:
                self.notes.append(f"audio stream {stream.index} ({name}) dropped: not writable")
                continue
            rate = ctx.sample_rate if ctx.sample_rate and ctx.sample_rate <= 96000 else 48000
            out = output.add_stream(target, rate=rate)
            with contextlib.suppress(Exception):
                out.layout = ctx.layout
            self.map[stream.index] = (out, False)
            self.notes.append(f"audio stream {stream.index} re-encoded {name} → {target}")
        self._packets: Iterator[av.Packet] | None = None
        self._pending: av.Packet | None = None
        self._done = not self.map
        self._last_dts: dict[int, int] = {}
        self.dropped = 0
        if self.map:
            streams = [s for s in self.input.streams.audio if s.index in self.map]
            self._packets = self.input.demux(*streams)

    @property
    def streams(self) -> int:
        return len(self.map)

    def _next(self) -> av.Packet | None:
        while not self._done:
            try:
                packet = next(self._packets)
            except StopIteration:
                self._done = True
                return None
            except av.error.FFmpegError as exc:
                # Damaged audio ends the audio, not the video.
                self.notes.append(f"audio ends early: {exc.strerror or exc}")
                self._done = True
                return None
            if packet.dts is None and packet.pts is None:
                if packet.size == 0:
                    self._flush_stream(packet.stream)
                continue
            return packet
        return None

    def pump(self, until: float | None) -> None:
        """Mux the audio packets whose time is at or before ``until`` seconds (all: None)."""
        while True:
            packet = self._pending or self._next()
            self._pending = None
            if packet is None:
                return
            ts = packet.pts if packet.pts is not None else packet.dts
            if until is not None and ts is not None and float(ts * packet.time_base) > until:
                self._pending = packet
                return
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        index = packet.stream.index
        out, copy = self.map[index]
        if copy:
            dts = packet.dts if packet.dts is not None else packet.pts
            last = self._last_dts.get(index)
            if last is not None and dts is not None and dts <= last:
                self._drop("audio packets with out-of-order timestamps dropped")
                return
            self._last_dts[index] = dts
            packet.stream = out
            try:
                self.output.mux(packet)
            except av.error.FFmpegError as exc:
                # Damaged audio costs a gap in the audio, not the whole video.
                self._drop(f"audio packets the muxer refused dropped ({exc.strerror or exc})")
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            self._drop("undecodable audio packets dropped")
            return
        for frame in frames:
            frame.pts = None  # the encoder's resampler times its own output
            self.output.mux(out.encode(frame))

    def _drop(self, note: str) -> None:
        self.dropped += 1
        if note not in self.notes:
            self.notes.append(note)

    def _flush_stream(self, stream: av.stream.Stream) -> None:
        out, copy = self.map.get(stream.index, (None, True))
        if out is None or copy:
            return
        with contextlib.suppress(av.error.FFmpegError):
            for frame in stream.codec_context.decode(None):
                frame.pts = None
                self.output.mux(out.encode(frame))

    def finish(self) -> None:
        """Mux the rest of the audio and flush the encoders."""
        self.pump(None)
        for out, copy in self.map.values():
            if not copy:
                self.output.mux(out.encode(None))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.input.close()


def _encodes(codec: str) -> bool:
    try:
        av.Codec(codec, "w")
    except Exception:
        return False
    return True


class _ThreadedWriter:
    """A bounded queue and one thread that owns the encoder: encoding overlaps the caller."""

    def __init__(self, name: str, queue_size: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain after a failure; the caller hears about it on put/finish
            try:
                self._handle(item)
            except BaseException as exc:
                self._error = exc

    def _handle(self, item: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _put(self, item: object) -> None:
        self._start()
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _join(self) -> None:
        if self._started and self._thread.is_alive():
            while True:
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            self._thread.join()

    def _drop_pending(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._wrap(self._error)

    def _wrap(self, exc: BaseException) -> SinkError:
        return exc if isinstance(exc, SinkError) else SinkError(f"writing failed: {exc}")


class VideoSink(_ThreadedWriter):
    """Encodes RGB frames to a video file with PyAV, in its own thread.

    Frames keep the timestamps given to :meth:`write` (in ``time_base`` units, typically the
    source's own ``pts``), so variable frame rate and any start offset survive. Rotation and
    colour tags given here are written to the stream; ``color`` also picks the RGB→YUV
    matrix and range, so colours match what the source decoded to.

    Args:
        path: the final file name; its suffix picks the container (see ``CONTAINERS``).
        width: frame width.
        height: frame height.
        codec: ``h264``, ``h265`` or ``ffv1``.
        crf: constant rate factor (H.264/H.265; default 18/20; lower is better quality).
        preset: x264/x265 speed preset.
        time_base: unit of the timestamps passed to :meth:`write` (default ``1/frame_rate``).
        frame_rate: nominal frame rate (default 25, or derived from ``time_base``).
        rotation: display rotation to tag, counter-clockwise degrees.
        color: colour tags (range, matrix, primaries, transfer) to convert with and tag.
        pix_fmt: encoder pixel format (default: :func:`choose_pix_fmt`).
        source_pix_fmt: the input's pixel format, whose chroma subsampling is kept.
        audio_from: a media file whose audio streams are carried over.
        overwrite: replace an existing file at ``path`` on ``close``.
        threads: encoder threads (``None``/0: the encoder's choice).
        queue_size: frames queued ahead of the encoder thread.

    Raises:
        SinkError: codec missing, folder missing/unwritable, output exists, bad container.

    Attributes:
        frames_written: frames accepted so far.
        notes: what happened to the audio streams, and timestamp repairs.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        *,
        codec: str = "h264",
        crf: int | None = None,
        preset: str = "medium",
        time_base: Fraction | None = None,
        frame_rate: Fraction | float | None = None,
        rotation: int = 0,
        color: ColorInfo | None = None,
        pix_fmt: str | None = None,
        source_pix_fmt: str | None = None,
        audio_from: str | os.PathLike | None = None,
        overwrite: bool = False,
        threads: int | None = None,
        queue_size: int = 8,
    ) -> None:
        self.path = Path(path)
        super().__init__(f"encode:{self.path.name}", queue_size)
        check_codec(codec)
        if codec == "png":
            raise SinkError("png writes a folder of images: use ImageSequenceSink")
        suffix = self.path.suffix.lower()
        if suffix not in CONTAINERS[codec]:
            allowed = ", ".join(CONTAINERS[codec])
            raise SinkError(f"{self.path.name}: {codec} is written to {allowed} files")
        if width < 1 or height < 1:
            raise SinkError(f"frame size must be positive, got {width}x{height}")
        if preset not in PRESETS:
            raise SinkError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if crf is not None and not 0 <= crf <= 51:
            raise SinkError(f"crf must be between 0 and 51, got {crf}")
        _check_destination(self.path, overwrite)
        self.codec, self.width, self.height = codec, width, height
        self.overwrite = overwrite
        rate = Fraction(frame_rate).limit_denominator(1 << 20) if frame_rate else None
        if time_base is None:
            time_base = 1 / rate if rate else Fraction(1, 25)
        self.time_base = Fraction(time_base)
        self.frame_rate = rate or (1 / self.time_base if self.time_base >= Fraction(1, 240) else 25)
        self.color = color or ColorInfo()
        self.pix_fmt = pix_fmt or choose_pix_fmt(codec, width, height, source_pix_fmt)
        self.frames_written = 0
        self.notes: list[str] = []
        self._last_pts: int | None = None
        self._repaired_pts = 0
        self._closed = False
        self._temp = temp_path_for(self.path)
        self._audio: _AudioTransfer | None = None
        try:
            # Created now (exclusively) rather than when FFmpeg writes the header: the name
            # is reserved in the destination folder and an unwritable folder fails here.
            os.close(os.open(self._temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except OSError as exc:
            raise SinkError(f"cannot write to {self.path.parent}: {_os_reason(exc)}") from None
        try:
            self._container = av.open(os.fspath(self._temp), mode="w")
        except (OSError, av.error.FFmpegError) as exc:
            self._remove_temp()
            raise SinkError(f"cannot write to {self.path.parent}: {_os_reason(exc)}") from None
        try:
            self._stream = self._add_video_stream(crf, preset, rotation, threads)
            if audio_from is not None:
                self._audio = _AudioTransfer(Path(audio_from), self._container)
                self.notes.extend(self._audio.notes)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, VideoError):
                raise
            raise SinkError(f"{self.path.name}: cannot set up the encoder ({exc})") from exc

    @property
    def audio_streams(self) -> int:
        """Audio streams carried into the output."""
        return self._audio.streams if self._audio is not None else 0

    def _add_video_stream(
        self, crf: int | None, preset: str, rotation: int, threads: int | None
    ) -> av.VideoStream:
        codec = self.codec
        stream = self._container.add_stream(ENCODERS[codec], rate=self.frame_rate)
        ctx = stream.codec_context
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.pix_fmt
        ctx.time_base = self.time_base
        stream.time_base = self.time_base
        ctx.thread_count = threads or 0
        options: dict[str, str] = {}
        if codec in ("h264", "h265"):
            options["crf"] = str(DEFAULT_CRF[codec] if crf is None else crf)
            options["preset"] = preset
            if codec == "h265":
                options["x265-params"] = "log-level=error"  # x265 prints to stderr otherwise
                if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
                    ctx.codec_tag = "hvc1"  # the tag Apple players require for HEVC
        else:
            options["level"] = "3"  # FFV1 version 3: multithreaded, with slice CRCs
            options["slicecrc"] = "1"
        stream.options = options
        c = self.color
        if self.pix_fmt.startswith("yuv"):
            ctx.color_range = c.range
            ctx.colorspace = c.space
        ctx.color_primaries = c.primaries
        ctx.color_trc = c.trc
        if rotation % 360:
            stream.set_display_rotation(rotation)
        return stream

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Queue one RGB frame for encoding.

        The frame is copied before this returns, so the caller may reuse its buffer.

        Args:
            image: uint8 RGB frame of the sink's size.
            pts: its timestamp in ``time_base`` units (default: previous + one frame).
                Non-increasing timestamps are moved just after the previous one.

        Raises:
            SinkError: the size is wrong, or encoding/writing failed (disk full…).

        Shape:
            - image: :math:`(H, W, 3)`
        """
        if self._closed:
            raise SinkError(f"{self.path.name}: the sink is closed")
        if image.dtype != np.uint8 or image.shape != (self.height, self.width, 3):
            raise SinkError(
                f"{self.path.name}: frames must be uint8 ({self.height}, {self.width}, 3), "
                f"got {image.dtype} {image.shape}"
            )
        if pts is None:
            step = max(1, round(1 / (self.frame_rate * self.time_base)))
            pts = 0 if self._last_pts is None else self._last_pts + step
        elif self._last_pts is not None and pts <= self._last_pts:
            # Encoders refuse non-increasing timestamps; damaged files have them.
            pts = self._last_pts + 1
            self._repaired_pts += 1
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = pts
        frame.time_base = self.time_base
        self._put(frame)
        self.frames_written += 1

    def _handle(self, item: object) -> None:
        frame: av.VideoFrame = item
        seconds = float(frame.pts * self.time_base)
        if self.pix_fmt.startswith("yuv"):
            frame = frame.reformat(
                format=self.pix_fmt,
                dst_colorspace=self.color.space,
                dst_color_range=self.color.range,
            )
        else:
            frame = frame.reformat(format=self.pix_fmt)  # bgr0: a lossless byte shuffle
        if self._audio is not None:
            self._audio.pump(seconds)
        self._container.mux(self._stream.encode(frame))

    def close(self) -> Path:
        """Flush the encoder, finish the file and give it its final name.

        Returns:
            The final path.

        Raises:
            SinkError: writing failed; the temporary file is removed and nothing is left
                under the final name.
        """
        if self._closed:
            return self.path
        self._closed = True
        self._join()
        try:
            self._raise_if_failed()
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish()
                self.notes.extend(n for n in self._audio.notes if n not in self.notes)
            self._container.close()
            if self._repaired_pts:
                self.notes.append(f"{self._repaired_pts} non-increasing timestamps repaired")
            _publish_file(self._temp, self.path, self.overwrite)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise self._wrap(exc) from None
        finally:
            if self._audio is not None:
                self._audio.close()
        return self.path

    def abort(self) -> None:
        """Stop, discard the queued frames and delete the temporary file; idempotent."""
        self._closed = True
        self._error = self._error or SinkError("aborted")
        self._drop_pending()
        self._join()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()
        if self._audio is not None:
            self._audio.close()
        self._remove_temp()

    def _remove_temp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def _wrap(self, exc: BaseException) -> SinkError:
        if isinstance(exc, SinkError):
            return exc
        if isinstance(exc, (OSError, av.error.FFmpegError)):
            return SinkError(f"writing {self.path.name} failed: {_os_reason(exc)}")
        return SinkError(f"writing {self.path.name} failed: {type(exc).__name__}: {exc}")

    def __enter__(self) -> VideoSink:
        """Use in a ``with`` block: closed on success, aborted on an exception."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """Close, or abort when the block raised."""
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ImageSequenceSink(_ThreadedWriter):
    """Writes frames as numbered PNG files into a folder, published whole on ``close``.

    The images go to a hidden temporary folder beside ``folder``, which is renamed to
    ``folder`` once every frame is written. ``timestamps.txt`` holds each frame's
    presentation time in seconds, one line per file, so timing is not lost.

    Args:
        folder: the final folder.
        width: frame width.
        height: frame height.
        time_base: unit of the timestamps passed to :meth:`write`.
        overwrite: replace an existing folder on ``close``.
        pattern: file name pattern for frame numbers (from 1).
        compression: PNG compression level 0–9 (lossless at every level).
        queue_size: frames queued ahead of the writer thread.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        width: int,
        height: int,
        *,
        time_base: Fraction | None = None,
        overwrite: bool = False,
        pattern: str = "frame_{:06d}.png",
        compression: int = 3,
        queue_size: int = 8,
    ) -> None:
        self.path = Path(folder)
        super().__init__(f"png:{self.path.name}", queue_size)
        _check_destination(self.path, overwrite)
        self.width, self.height = width, height
        self.time_base = Fraction(time_base) if time_base else Fraction(1, 25)
        self.overwrite = overwrite
        self.pattern = pattern
        self.compression = compression
        self.frames_written = 0
        self.notes: list[str] = []
        self._times: list[float] = []
        self._closed = False
        self._temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        try:
            self._temp.mkdir()
        except OSError as exc:
            raise SinkError(f"cannot write to {self.path.parent}: {_os_reason(exc)}") from None

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Queue one RGB frame (copied before this returns).

        Shape:
            - image: :math:`(H, W, 3)`
        """
        if self._closed:
            raise SinkError(f"{self.path.name}: the sink is closed")
        if image.dtype != np.uint8 or image.shape != (self.height, self.width, 3):
            raise SinkError(
                f"{self.path.name}: frames must be uint8 ({self.height}, {self.width}, 3), "
                f"got {image.dtype} {image.shape}"
            )
        pts = self.frames_written if pts is None else pts
        self._times.append(float(pts * self.time_base))
        self.frames_written += 1
        self._put((self.frames_written, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)))

    def _handle(self, item: object) -> None:
        number, bgr = item
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, self.compression])
        if not ok:
            raise SinkError(f"PNG encoding failed for frame {number}")
        (self._temp / self.pattern.format(number)).write_bytes(data.tobytes())

    def close(self) -> Path:
        """Finish writing and rename the folder to its final name.

        Raises:
            SinkError: writing failed; the temporary folder is removed.
        """
        if self._closed:
            return self.path
        self._closed = True
        self._join()
        try:
            self._raise_if_failed()
            (self._temp / "timestamps.txt").write_text("".join(f"{t:.6f}\n" for t in self._times))
            if self.path.exists():
                if not self.overwrite:
                    raise SinkError(f"{self.path}: appeared while writing; not replaced")
                old = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.old")
                os.replace(self.path, old)
                os.replace(self._temp, self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self._temp, self.path)
        except BaseException as exc:
            shutil.rmtree(self._temp, ignore_errors=True)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise self._wrap(exc) from None
        return self.path

    def abort(self) -> None:
        """Stop and delete the temporary folder; idempotent."""
        self._closed = True
        self._error = self._error or SinkError("aborted")
        self._drop_pending()
        self._join()
        shutil.rmtree(self._temp, ignore_errors=True)

    def _wrap(self, exc: BaseException) -> SinkError:
        if isinstance(exc, SinkError):
            return exc
        return SinkError(f"writing {self.path.name} failed: {_os_reason(exc)}")

    def __enter__(self) -> ImageSequenceSink:
        """Use in a ``with`` block: closed on success, aborted on an exception."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """Close, or abort when the block raised."""
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_image(
    path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = False, quality: int = 95
) -> Path:
    """Write an RGB frame as an image file (format from the suffix), atomically.

    Args:
        path: the final file name (``.jpg``, ``.png``, ``.webp``, ``.bmp``, ``.tif``…).
        image: uint8 RGB frame.
        overwrite: replace an existing file.
        quality: JPEG/WebP quality.

    Returns:
        The final path.

    Raises:
        SinkError: the format is unknown to OpenCV, or the file cannot be written.

    Shape:
        - image: :math:`(H, W, 3)`
    """
    path = Path(path)
    _check_destination(path, overwrite)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_WEBP_QUALITY, quality]
    try:
        ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    except cv2.error:
        ok = False
    if not ok:
        raise SinkError(f"{path.name}: OpenCV cannot write {path.suffix or 'this'} images")
    temp = temp_path_for(path)
    try:
        temp.write_bytes(data.tobytes())
        _publish_file(temp, path, overwrite)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise SinkError(f"writing {path} failed: {_os_reason(exc)}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return path
