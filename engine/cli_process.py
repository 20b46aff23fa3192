"""``rtdeblur process``: deblur video and image files, folders and globs into new files.

Progress (per file and overall, with fps and ETA) goes to stderr: one line updated in place
on a terminal, plain lines every few seconds otherwise. The backend picked is printed
first, a summary table last. Ctrl-C stops cleanly: the file being written is discarded.

Exit status: 0 when every file was processed (``partial`` files included; they are flagged
in the summary), 1 when any file failed or nothing could start (bad model, no backend),
130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from engine.allocator import keep_freed_memory
from engine.backends.base import PRECISIONS, BackendUnavailableError
from engine.backends.select import BACKENDS, select_backend
from engine.backends.streams import auto_streams
from engine.modelcard import ModelCardError
from engine.process import (
    CANCELLED,
    FAILED,
    OK,
    PARTIAL,
    FileResult,
    ProcessError,
    ProcessOptions,
    Progress,
    plan_jobs,
    run_jobs,
)
from engine.resources import DEFAULT_MODEL, resolve_model
from engine.video.sink import PRESETS, SINK_CODECS

PROG = "rtdeblur process"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``process`` command to the ``rtdeblur`` parser."""
    parser = subparsers.add_parser(
        "process",
        help="deblur video and image files into new files",
        description=(
            "Deblur videos (every frame, timestamps and audio kept) and images. INPUT may be "
            "files, folders (their media files) or glob patterns."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _int_between(text: str, what: str, low: int, high: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be {expected}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, got {value}")
    return value


def _crf(text: str) -> int:
    return _int_between(text, "CRF", 0, 51, "a whole number")


def _streams(text: str) -> int | str:
    return text if text == "auto" else _int_between(text, "streams", 1, 64, "a number or auto")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtdeblur process``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or globs")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (created if missing); for a single input, may be the output file",
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"model card path or shipped model name (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="fp32, fp16, bf16 or int8 (default: fp16 on a GPU; on the CPU fp32, or int8 where "
        "the model card measured its NAME.int8.onnx within 0.2 dB of fp32, see rtdeblur "
        "export --int8)",
    )
    parser.add_argument(
        "--streams",
        type=_streams,
        default="auto",
        metavar="N|auto",
        help="frames deblurred side by side on the CPU, each on cores/N threads: more frames "
        "per second than one frame on every core (auto: 2 on a CPU with 2+ cores; GPUs run "
        "one)",
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="write original | deblurred in one frame (double width)",
    )
    parser.add_argument(
        "--codec",
        choices=SINK_CODECS,
        default="h264",
        help="video codec: h264, h265, ffv1 (lossless, MKV) or png (image sequence)",
    )
    parser.add_argument(
        "--crf", type=_crf, default=None, help="H.264/H.265 quality, 0-51 (default 18/20)"
    )
    parser.add_argument("--preset", choices=PRESETS, default="medium", help="x264/x265 preset")
    parser.add_argument("--no-audio", action="store_true", help="drop the audio streams")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


class ProgressPrinter:
    """Draws the progress bars on a text stream.

    Args:
        stream: where to draw (stderr).
        interactive: redraw one line in place (a terminal); otherwise print a plain line
            every ``interval`` seconds and when a file ends.
        interval: seconds between plain lines.
    """

    def __init__(self, stream: TextIO, interactive: bool | None = None, interval: float = 5.0):
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.interval = interval if not self.interactive else 0.1
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        """Report ``p`` (throttled; file ends always shown)."""
        now = time.monotonic()
        if not p.file_done and now - self._last < self.interval:
            return
        self._last = now
        line = format_progress(p)
        with self._lock:
            if self.interactive:
                columns = shutil.get_terminal_size((120, 20)).columns - 1
                line = line[:columns]
                pad = max(0, self._width - len(line))
                self.stream.write("\r" + line + " " * pad)
                self._width = len(line)
                if p.file_done:
                    self.stream.write("\n")
                    self._width = 0
            else:
                self.stream.write(line + "\n")
            self.stream.flush()

    def clear(self) -> None:
        """End an in-place line so the next message starts on its own line."""
        with self._lock:
            if self.interactive and self._width:
                self.stream.write("\n")
                self.stream.flush()
                self._width = 0


def _bar(fraction: float | None, width: int = 20) -> str:
    if fraction is None:
        return "[" + "?" * width + "]"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def format_duration(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``None`` → ``?``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_progress(p: Progress) -> str:
    """One line: this file's bar, frames, fps and ETA, then the overall bar and ETA."""
    name = p.input.name
    if len(name) > 28:
        name = name[:12] + "…" + name[-15:]
    if p.frames_total:
        frac = p.frames_done / p.frames_total
        count = f"{p.frames_done}/{p.frames_total} {frac:4.0%}"
    else:
        frac, count = None, f"{p.frames_done} frames"
    overall = p.overall_done / p.overall_total if p.overall_total else None
    overall_text = f"{overall:4.0%}" if overall is not None else "?"
    return (
        f"[{p.file_index + 1}/{p.file_count}] {name} {_bar(frac)} {count} "
        f"{p.fps:5.1f} fps ETA {format_duration(p.eta)} | all {_bar(overall, 10)} "
        f"{overall_text} ETA {format_duration(p.overall_eta)}"
    )


def format_summary(results: Sequence[FileResult]) -> str:
    """The summary table: one row per file with status, frames, fps and the reason."""
    headers = ("status", "frames", "fps", "time", "file", "output / reason")
    rows = []
    for r in results:
        frames = str(r.frames) + (f"/{r.frames_expected}" if r.frames_expected else "")
        detail = r.reason if r.status != OK else str(r.output or "")
        if r.status == PARTIAL and r.output is not None:
            detail = f"{r.output} — {r.reason}"
        rows.append(
            (
                r.status,
                frames if r.status in (OK, PARTIAL) else "-",
                f"{r.fps:.1f}" if r.frames else "-",
                format_duration(r.seconds) if r.seconds else "-",
                str(r.input),
                detail,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:-1])]

    def line(cells: Sequence[str]) -> str:
        padded = (c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True))
        return "  ".join(padded) + "  " + cells[-1]

    lines = [line(headers), *(line(row) for row in rows)]
    counts = {s: sum(r.status == s for r in results) for s in (OK, PARTIAL, FAILED, CANCELLED)}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no files")
    return "\n".join(lines)


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``rtdeblur process`` with parsed arguments and return the exit status."""
    options = ProcessOptions(
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        audio=not args.no_audio,
        overwrite=args.overwrite,
        side_by_side=args.side_by_side,
    )
    if args.crf is not None and args.codec not in ("h264", "h265"):
        _err(f"note: --crf applies to h264/h265 only; ignored for {args.codec}")
    try:
        jobs = plan_jobs(args.inputs, args.output, options)
    except ProcessError as exc:
        _err(f"error: {exc}")
        return 1
    # One line per distinct problem: an unwritable output folder is not news ten times over.
    for message in dict.fromkeys(j.error for j in jobs if j.error is not None):
        _err(f"error: {message}")
    runnable = [j for j in jobs if j.error is None]
    if not runnable:
        _err("nothing to process")
        print(format_summary([FileResult(j.input, None, FAILED, j.error or "") for j in jobs]))
        return 1
    try:
        card = resolve_model(args.model)
        streams = auto_streams() if args.streams == "auto" else args.streams
        selection = select_backend(
            card, backend=args.backend, precision=args.precision, streams=streams
        )
    except (ModelCardError, BackendUnavailableError, ValueError) as exc:
        _err(f"error: {exc}")
        return 1
    print(selection.describe(), file=sys.stderr)
    keep_freed_memory()  # decoded and converted frames reuse the pages of the last ones
    printer = ProgressPrinter(sys.stderr)
    cancel = threading.Event()
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            outcome["results"] = run_jobs(jobs, selection.backend, options, printer, cancel)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc
        finally:
            finished.set()

    # The work runs in a thread and Ctrl-C only sets the cancel flag: the worker then
    # discards the file it was writing and reports the rest as cancelled.
    interrupted = threading.Event()

    def on_interrupt(*_: object) -> None:
        if not interrupted.is_set():
            interrupted.set()
            cancel.set()
            printer.clear()
            _err("interrupted: stopping, discarding the file being written…")

    worker = threading.Thread(target=work, name="process", daemon=True)
    with _sigint_handler(on_interrupt):
        worker.start()
        while not finished.is_set():
            try:
                time.sleep(0.1)
            except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                on_interrupt()
    worker.join()
    with contextlib.suppress(Exception):
        selection.backend.close()
    printer.clear()
    if "error" in outcome:
        _err(f"error: {outcome['error']}")
        return 1
    results: list[FileResult] = outcome["results"]  # type: ignore[assignment]
    for r in results:
        for warning in r.warnings:
            _err(f"warning: {r.input.name}: {warning}")
        if r.status == PARTIAL:
            _err(f"warning: {r.input.name}: partial: {r.reason}")
    print(format_summary(results))
    if interrupted.is_set():
        return 130
    return 1 if any(r.status in (FAILED, CANCELLED) for r in results) else 0


@contextlib.contextmanager
def _sigint_handler(handler: Callable[..., None]) -> Iterator[None]:
    """Route SIGINT to ``handler`` (not KeyboardInterrupt) while the block runs.

    An exception raised at an arbitrary point of the main thread could skip the cleanup
    of a file being written; a handler only sets flags. Outside the main thread signal
    handlers cannot be set, and Ctrl-C arrives as KeyboardInterrupt as usual.
    """
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rtdeblur process`` on its own (``python -m engine.cli_process``)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Deblur video and image files.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
