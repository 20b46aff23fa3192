"""Offline processing: deblur video and image files into new files, every frame kept.

This is the job behind ``rtdeblur process`` and the app's "Process files…" dialog. It has
three steps, each usable alone:

1. :func:`plan_jobs` expands the inputs (files, folders, globs) into :class:`Job` objects
   with their output paths, and checks each one up front: the file exists and holds a
   decodable video stream (or is an image), the output folder is writable, the output does
   not exist yet (unless ``overwrite``) and is not one of the inputs. A job that fails a
   check carries its one-line reason and is reported, not run; the others still run.
2. :func:`run_jobs` processes the valid jobs one after the other. Per video, decoding
   (:class:`~engine.video.FileSource`'s thread), inference (the calling thread) and encoding
   (the sink's thread) overlap, linked by bounded queues so memory stays flat. Progress goes
   to a callback; a :class:`threading.Event` cancels.
3. Each file ends as a :class:`FileResult`: ``ok``, ``partial``, ``failed`` (with a one-line
   reason) or ``cancelled``.

Policies:

* **Outputs** are written under a temporary name in the destination folder and renamed when
  complete (see :mod:`engine.video.sink`): a failure or a cancel leaves nothing under the
  final name, and inputs are never opened for writing.
* **Damaged or truncated files**: what decodes is processed. Packets the decoder rejects are
  skipped; a file that ends early (cut-off download, copy interrupted) ends the video there.
  The output then holds every frame that decoded, with its original timestamp, is kept,
  and the result is ``partial`` with a warning saying what happened. A file in which no
  frame decodes (or whose index is missing, like an MP4 cut before its ``moov`` box) fails
  with nothing written.
* **Rotation**: for video outputs the frames are processed as stored and the display
  rotation is written to the output, so it plays exactly like the input. Side-by-side
  outputs, PNG sequences and images are rotated upright instead (they cannot carry it).
* **Audio**: copied without re-encoding where the output container allows, re-encoded to
  AAC otherwise, dropped with ``audio=False`` or for PNG sequences (with a warning).
* **Images** (jpg, png, …) come out in the same format as they went in.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import Backend
from engine.pipeline.runner import FramePipeline
from engine.video.sink import (
    CONTAINERS,
    ImageSequenceSink,
    SinkError,
    VideoSink,
    check_codec,
    write_image,
)
from engine.video.sources import (
    IMAGE_SUFFIXES,
    FileSource,
    MediaInfo,
    SourceError,
    VideoError,
    probe,
    read_image,
)

log = logging.getLogger(__name__)

OK, PARTIAL, FAILED, CANCELLED = "ok", "partial", "failed", "cancelled"
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
        ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".mxf", ".y4m", ".gif", ".dv", ".vob",
    }
)  # fmt: skip
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
_GLOB_CHARS = re.compile(r"[*?\[]")


class ProcessError(Exception):
    """A problem that stops the whole run before it starts (bad option, codec missing)."""


@dataclass
class ProcessOptions:
    """How files are processed.

    Attributes:
        codec: ``h264``, ``h265``, ``ffv1`` or ``png`` for videos (images keep their format).
        crf: H.264/H.265 quality (``None``: the sink's default).
        preset: x264/x265 speed preset.
        audio: carry the audio over.
        overwrite: replace existing outputs.
        side_by_side: write original | deblurred side by side (doubles the width).
        queue_size: frames buffered between decode, inference and encode.
        encoder_threads: video encoder threads (``None``: the encoder's choice).
    """

    codec: str = "h264"
    crf: int | None = None
    preset: str = "medium"
    audio: bool = True
    overwrite: bool = False
    side_by_side: bool = False
    queue_size: int = 8
    encoder_threads: int | None = None


@dataclass
class Job:
    """One input file and where its result goes.

    Attributes:
        input: the input file.
        output: the output file (or folder, for a PNG sequence); ``None`` if undecidable.
        kind: ``"video"`` or ``"image"``.
        info: what probing the video found.
        error: why the job cannot run (``None`` when it can).
    """

    input: Path
    output: Path | None
    kind: str = "video"
    info: MediaInfo | None = None
    error: str | None = None

    @property
    def frames_estimate(self) -> int:
        """Frames expected (1 for an image; 0 when unknown)."""
        if self.kind == "image":
            return 1
        return (self.info.frames or 0) if self.info is not None else 0


@dataclass
class FileResult:
    """How one file ended.

    Attributes:
        input: the input file.
        output: the file written (``None`` when nothing was).
        status: ``ok``, ``partial``, ``failed`` or ``cancelled``.
        reason: one line saying why, for anything but ``ok``.
        frames: frames written.
        frames_expected: frames the input was expected to hold, if known.
        seconds: wall time spent on the file.
        warnings: things worth knowing that did not stop the file.
    """

    input: Path
    output: Path | None
    status: str
    reason: str = ""
    frames: int = 0
    frames_expected: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames per second over the whole file, decode and encode included."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Progress:
    """A progress report, sent after every frame (and when a file ends).

    Attributes:
        file_index: index of the current file among the runnable jobs, from 0.
        file_count: number of runnable jobs.
        input: the current file.
        frames_done: frames of this file written so far.
        frames_total: frames this file is expected to hold (``None`` when unknown).
        fps: frames per second on this file so far.
        eta: seconds left on this file (``None`` when unknown).
        overall_done: frames done over all files.
        overall_total: frames expected over all files (0 when unknown).
        overall_eta: seconds left over all files (``None`` when unknown).
        file_done: this report closes the file.
    """

    file_index: int
    file_count: int
    input: Path
    frames_done: int
    frames_total: int | None
    fps: float
    eta: float | None
    overall_done: int
    overall_total: int
    overall_eta: float | None
    file_done: bool = False


ProgressCallback = Callable[[Progress], None]


class _CancelledError(Exception):
    """Raised inside a job when the cancel event is set."""


# -- planning -------------------------------------------------------------------------------


def _natural_key(path: Path) -> list:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", str(path))]


def _media_in_folder(folder: Path) -> list[Path]:
    # Hidden files are skipped: among them are the temporary files sinks write.
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MEDIA_SUFFIXES
        ),
        key=_natural_key,
    )


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, str | None]]:
    """Files named by ``inputs``: files as given, folders' media files, glob matches.

    Folders are not searched recursively; ``**`` in a glob is. Each file appears once.

    Returns:
        ``(path, error)`` pairs; ``error`` is a one-line reason when the input names nothing
        processable (missing file, folder without media, glob matching nothing).
    """
    found: list[tuple[Path, str | None]] = []
    seen: set[Path] = set()

    def add(path: Path, error: str | None = None) -> None:
        key = path.resolve() if error is None else path
        if key not in seen:
            seen.add(key)
            found.append((path, error))

    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            media = _media_in_folder(path)
            if not media:
                add(path, f"{path}: folder holds no video or image files")
            for p in media:
                add(p)
        elif path.exists():
            add(path)
        elif _GLOB_CHARS.search(text):
            matches = [Path(m) for m in glob.glob(text, recursive=True)]
            files = sorted((m for m in matches if m.is_file()), key=_natural_key)
            if not files:
                add(path, f"{text}: no files match")
            for p in files:
                add(p)
        else:
            add(path, f"{path}: file not found")
    return found


def _check_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot take output files, or ``None`` (created if missing)."""
    if folder.exists() and not folder.is_dir():
        return f"{folder}: output path is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{folder}: cannot create the output folder ({exc.strerror or exc})"
    try:
        # A real write catches read-only file systems and ACLs that os.access misses.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rtdeblur-write-test-"):
            pass
    except OSError as exc:
        return f"{folder}: output folder is not writable ({exc.strerror or exc})"
    return None


def _video_suffix(codec: str, input_suffix: str) -> str:
    allowed = CONTAINERS[codec]
    return input_suffix if input_suffix in allowed else next(iter(allowed))


def _output_for(path: Path, kind: str, codec: str, folder: Path) -> Path:
    if kind == "image":
        return folder / path.name
    if codec == "png":
        return folder / path.stem
    return folder / (path.stem + _video_suffix(codec, path.suffix.lower()))


def _single_output_file(inputs: Sequence, output: Path, codec: str) -> bool:
    """Whether ``output`` names the result file itself (one input file, a file-like name)."""
    if len(inputs) != 1 or output.is_dir() or os.fspath(output).endswith(("/", os.sep)):
        return False
    first = Path(os.fspath(inputs[0]))
    if first.is_dir() or (not first.exists() and _GLOB_CHARS.search(os.fspath(first))):
        return False
    suffix = output.suffix.lower()
    return codec != "png" and suffix in MEDIA_SUFFIXES


def plan_jobs(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    options: ProcessOptions | None = None,
) -> list[Job]:
    """Expand and check the inputs, and decide every output path.

    ``output`` is a folder (created if missing) that receives one result per input, named
    like the input (``clip.mov`` → ``OUT/clip.mov`` with H.264, ``OUT/clip.mkv`` with FFV1,
    ``OUT/clip/`` with PNG; images keep their format). With a single input file, an
    ``output`` that has a media suffix names the result file itself.

    Args:
        inputs: files, folders and glob patterns.
        output: output folder, or output file for a single input.
        options: processing options (codec and overwrite matter here).

    Returns:
        One :class:`Job` per file; those with ``error`` set will not run.

    Raises:
        ProcessError: no inputs, or the codec is unknown or missing from this build.
    """
    options = options or ProcessOptions()
    if not inputs:
        raise ProcessError("no input files given")
    try:
        check_codec(options.codec)
    except SinkError as exc:
        raise ProcessError(str(exc)) from None
    output = Path(output)
    single = _single_output_file(inputs, output, options.codec)
    folder = output.parent if single else output
    folder_error = _check_writable(folder)
    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    input_paths = set()
    expanded = expand_inputs(inputs)
    for path, _ in expanded:
        with contextlib.suppress(OSError):
            input_paths.add(path.resolve())
    for path, error in expanded:
        kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
        job = Job(path, None, kind, error=error)
        jobs.append(job)
        if error is not None:
            continue
        if single:
            job.output = output
            job.error = _check_single_output(path, kind, output, options.codec)
        else:
            job.output = _output_for(path, kind, options.codec, folder)
        if job.error is None:
            job.error = folder_error
        if job.error is None:
            job.error = _check_output(job, claimed, input_paths, options.overwrite, options.codec)
        if job.error is None:
            job.error, job.info = _check_input(path, kind)
        if job.error is None:
            claimed[job.output.resolve()] = path
    return jobs


def _check_single_output(path: Path, kind: str, output: Path, codec: str) -> str | None:
    suffix = output.suffix.lower()
    if kind == "image":
        if suffix not in IMAGE_SUFFIXES:
            return f"{output.name}: an image is written as an image (.jpg, .png, …)"
        return None
    if suffix not in CONTAINERS[codec]:
        allowed = ", ".join(CONTAINERS[codec])
        return f"{output.name}: {codec} video is written to {allowed} files"
    return None


def _check_output(
    job: Job, claimed: dict[Path, Path], inputs: set[Path], overwrite: bool, codec: str
) -> str | None:
    out = job.output
    resolved = out.resolve()
    if resolved in inputs:
        return f"{out}: output would replace an input file; choose another output folder"
    if resolved in claimed:
        return f"{out}: {claimed[resolved].name} is already written there; use another folder"
    if out.exists() and not overwrite:
        return f"{out}: already exists (pass --overwrite to replace it)"
    if out.exists() and out.is_dir() != (job.kind == "video" and codec == "png"):
        return f"{out}: exists and is a {'folder' if out.is_dir() else 'file'}; not replaced"
    return None


def _check_input(path: Path, kind: str) -> tuple[str | None, MediaInfo | None]:
    if not path.exists():
        return f"{path}: file not found", None
    if kind == "image":
        if not os.access(path, os.R_OK):
            return f"{path}: cannot read the file (permission denied)", None
        return None, None
    try:
        return None, probe(path)
    except SourceError as exc:
        return str(exc), None


# -- running --------------------------------------------------------------------------------


class _Meter:
    """Frame counts and rates for the progress reports."""

    def __init__(self, count: int, overall_total: int, callback: ProgressCallback | None):
        self.count = count
        self.overall_total = overall_total
        self.callback = callback
        self.overall_done = 0
        self.overall_start = time.monotonic()
        self.index = 0
        self.input = Path()
        self.total: int | None = None
        self.done = 0
        self.start = self.overall_start

    def begin(self, index: int, job: Job) -> None:
        self.index, self.input = index, job.input
        self.total = job.frames_estimate or None
        self.done = 0
        self.start = time.monotonic()

    def frame(self) -> None:
        self.done += 1
        self.overall_done += 1
        self.emit(False)

    def emit(self, file_done: bool) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        fps = self.done / max(now - self.start, 1e-9)
        total = self.total
        if total is not None and self.done > total:
            total = self.done  # the estimate was short; never report more than 100 %
        eta = (total - self.done) / fps if total and fps > 0 else None
        overall_fps = self.overall_done / max(now - self.overall_start, 1e-9)
        left = max(self.overall_total - self.overall_done, 0)
        overall_eta = left / overall_fps if self.overall_total and overall_fps > 0 else None
        if file_done:
            eta = 0.0
        self.callback(
            Progress(
                self.index,
                self.count,
                self.input,
                self.done,
                total,
                fps,
                eta,
                self.overall_done,
                max(self.overall_total, self.overall_done),
                overall_eta,
                file_done,
            )
        )


def run_jobs(
    jobs: Sequence[Job],
    pipeline: FramePipeline | Backend,
    options: ProcessOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[FileResult]:
    """Process the jobs in order and say how each ended.

    Runs in the calling thread (inference happens here; decoding and encoding run in their
    own threads). ``progress`` is called from this thread too.

    Args:
        jobs: from :func:`plan_jobs`; jobs with an ``error`` are reported as failed.
        pipeline: a :class:`FramePipeline`, or a backend (wrapped in one).
        options: processing options.
        progress: called after every frame and at the end of every file.
        cancel: set it to stop: the current file's output is discarded and the remaining
            files are reported as cancelled.

    Returns:
        One :class:`FileResult` per job, in the same order.
    """
    options = options or ProcessOptions()
    if not isinstance(pipeline, FramePipeline):
        pipeline = FramePipeline(pipeline)
    cancel = cancel or threading.Event()
    runnable = [j for j in jobs if j.error is None]
    meter = _Meter(len(runnable), sum(j.frames_estimate for j in runnable), progress)
    results: list[FileResult] = []
    index = 0
    for job in jobs:
        if job.error is not None:
            results.append(FileResult(job.input, None, FAILED, job.error))
            continue
        if cancel.is_set():
            results.append(FileResult(job.input, None, CANCELLED, "cancelled before it started"))
            continue
        meter.begin(index, job)
        index += 1
        started = time.monotonic()
        try:
            if job.kind == "image":
                result = _run_image(job, pipeline, options, meter, cancel)
            else:
                result = _run_video(job, pipeline, options, meter, cancel)
        except _CancelledError:
            result = FileResult(job.input, None, CANCELLED, "cancelled; nothing written")
        except VideoError as exc:
            result = FileResult(job.input, None, FAILED, str(exc))
        except Exception as exc:
            # Logged at debug level only: the CLI promises a message, not a traceback.
            log.debug("processing %s failed", job.input, exc_info=True)
            result = FileResult(job.input, None, FAILED, _one_line(exc))
        result.seconds = time.monotonic() - started
        result.frames_expected = result.frames_expected or (job.frames_estimate or None)
        if result.status in (OK, PARTIAL):
            meter.emit(True)
        results.append(result)
    return results


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {text}"


def _run_image(
    job: Job, pipeline: FramePipeline, options: ProcessOptions, meter: _Meter, cancel
) -> FileResult:
    image = read_image(job.input)
    if cancel.is_set():
        raise _CancelledError
    out = _infer(pipeline, image, job.input)
    if options.side_by_side:
        out = np.concatenate([image, out], axis=1)
    if cancel.is_set():
        raise _CancelledError
    write_image(job.output, out, overwrite=options.overwrite)
    meter.frame()
    return FileResult(job.input, job.output, OK, frames=1, frames_expected=1)


def _infer(pipeline: FramePipeline, image: np.ndarray, path: Path) -> np.ndarray:
    return _infer_batch(pipeline, [image], path)[0]


def _batches(frames: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive runs of ``size`` items (the last may be shorter)."""
    batch: list[Any] = []
    for item in frames:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _infer_batch(pipeline: FramePipeline, images: list[np.ndarray], path: Path) -> np.ndarray:
    """Deblurred ``images`` as one (N, H, W, 3) array (a reused buffer: copy to keep it)."""
    try:
        if len(images) == 1:
            return pipeline.process_batch(images[0][None])
        if any(image.shape != images[0].shape for image in images):  # a size change mid-clip
            return np.stack([pipeline.process(image).copy() for image in images])
        return pipeline.process_batch(np.stack(images))
    except ValueError as exc:  # e.g. a frame too small for the model
        raise VideoError(f"{path}: cannot deblur this frame ({exc})") from None


def _open_sink(job: Job, source: FileSource, options: ProcessOptions, keep_rotation: bool):
    info = job.info
    width = source.width * (2 if options.side_by_side else 1)
    if options.codec == "png":
        return ImageSequenceSink(
            job.output,
            width,
            source.height,
            time_base=source.time_base,
            overwrite=options.overwrite,
            queue_size=options.queue_size,
        )
    carry_audio = options.audio and info.audio_streams > 0
    return VideoSink(
        job.output,
        width,
        source.height,
        codec=options.codec,
        crf=options.crf,
        preset=options.preset,
        time_base=source.time_base,
        frame_rate=info.frame_rate,
        rotation=source.rotation if keep_rotation else 0,
        color=info.color,
        source_pix_fmt=info.pix_fmt,
        audio_from=job.input if carry_audio else None,
        overwrite=options.overwrite,
        threads=options.encoder_threads,
        queue_size=options.queue_size,
    )


def _run_video(
    job: Job, pipeline: FramePipeline, options: ProcessOptions, meter: _Meter, cancel
) -> FileResult:
    # Video containers carry the display rotation, so frames stay as stored and the tag is
    # copied; the other outputs cannot carry it and get upright frames instead.
    keep_rotation = options.codec != "png" and not options.side_by_side
    source = FileSource(job.input, apply_rotation=not keep_rotation, queue_size=options.queue_size)
    warnings: list[str] = []
    try:
        sink = _open_sink(job, source, options, keep_rotation)
        try:
            w = source.width
            both = np.empty((source.height, 2 * w, 3), np.uint8) if options.side_by_side else None
            # A backend that runs several frames side by side gets that many at once.
            for batch in _batches(source, getattr(pipeline.backend, "streams", 1)):
                if cancel.is_set():
                    raise _CancelledError
                images = [timed.image for timed in batch]
                outs = _infer_batch(pipeline, images, job.input)
                for timed, out in zip(batch, outs, strict=True):
                    if both is not None:
                        both[:, :w] = timed.image
                        both[:, w:] = out
                        out = both
                    sink.write(out, timed.pts)
                    meter.frame()
            if cancel.is_set():
                raise _CancelledError
            if sink.frames_written == 0:
                raise SourceError(f"{job.input}: no frame could be decoded")
            problems = source.problems
            sink.close()
        except BaseException:
            sink.abort()
            raise
    finally:
        source.close()
    warnings.extend(sink.notes)
    if options.codec == "png" and job.info.audio_streams and options.audio:
        warnings.append("audio not kept: a PNG sequence cannot hold it")
    status, reason = OK, ""
    if problems:
        status = PARTIAL
        reason = (
            f"damaged or truncated input: {'; '.join(problems)}; wrote the "
            f"{sink.frames_written} frames that decoded"
        )
    return FileResult(
        job.input,
        job.output,
        status,
        reason,
        frames=sink.frames_written,
        frames_expected=job.frames_estimate or None,
        warnings=warnings,
    )


def process_files(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    pipeline: FramePipeline | Backend,
    options: ProcessOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[FileResult]:
    """Plan and run in one call: :func:`plan_jobs` then :func:`run_jobs`.

    Raises:
        ProcessError: see :func:`plan_jobs`.
    """
    options = options or ProcessOptions()
    jobs = plan_jobs(inputs, output, options)
    return run_jobs(jobs, pipeline, options, progress, cancel)
