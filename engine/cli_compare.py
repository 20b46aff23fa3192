"""``rtdeblur compare``: score models on a clip and write a CSV, plots and an HTML report.

Paired mode (``--reference``): PSNR and SSIM of the input and of each model's output against
the sharp reference. Unpaired mode: no-reference sharpness and temporal flicker. See
:mod:`engine.compare` for the measures and docs/compare.md for usage.

Input and reference of different lengths: the common prefix is compared and a warning is
printed (the report says so too). Frames of different sizes: an error, nothing is written.

Exit status: 0 when the report was written, 1 on bad input or a model/backend that cannot
load, 130 when interrupted (nothing is written then).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.backends.base import BackendUnavailableError
from engine.backends.select import BACKENDS, select_backend
from engine.cli_process import ProgressPrinter
from engine.compare import (
    PAIRED_METRICS,
    CompareError,
    CompareProgress,
    format_summary,
    run_comparison,
    write_report,
)
from engine.modelcard import ModelCardError
from engine.process import Progress
from engine.resources import DEFAULT_MODEL, resolve_model

PROG = "rtdeblur compare"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``compare`` command to the ``rtdeblur`` parser."""
    parser = subparsers.add_parser(
        "compare",
        help="compare models' quality on a clip (metrics, plots, HTML report)",
        description=(
            "Score the input and each model's output frame by frame: PSNR/SSIM against a "
            "sharp --reference, or no-reference sharpness and flicker without one. Writes "
            "metrics.csv, PNG plots and report.html."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtdeblur compare``."""
    parser.add_argument("input", metavar="INPUT", help="blurred video file or image folder")
    parser.add_argument(
        "--reference", metavar="REF", help="sharp video or image folder (paired mode)"
    )
    parser.add_argument(
        "--models",
        default=DEFAULT_MODEL,
        metavar="M1[,M2…]",
        help=f"comma-separated model names or card paths (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend")
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="report folder (default: compare-INPUTNAME)"
    )
    parser.add_argument("--limit", type=_positive, metavar="N", help="compare the first N frames")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--no-lpips",
        action="store_true",
        help="paired mode: skip LPIPS (it needs torch and the VGG16/LPIPS weights files)",
    )


def load_lpips_metric():
    """The LPIPS frame metric, or ``None`` and the reason it is unavailable.

    LPIPS runs a VGG16 in PyTorch, which the app-only install does not have: the metric is
    loaded by name, only when asked for, and its absence is reported, not fatal.
    """
    try:
        module = importlib.import_module("engine.models.lpips")
    except ModuleNotFoundError as exc:
        return None, f"{exc.name} is not installed; pip install 'rtdeblur[train]'"
    from engine.assets import AssetNotFoundError

    try:
        return module.LPIPSFrameMetric(), ""
    except (AssetNotFoundError, ValueError) as exc:
        return None, str(exc).splitlines()[0]


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``rtdeblur compare`` with parsed arguments and return the exit status."""
    input_path = Path(args.input)
    for label, path in (("input", args.input), ("reference", args.reference)):
        if path is not None and not Path(path).exists():
            _err(f"error: {label} not found: {path}")
            return 1
    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        _err("error: --models names no model")
        return 1
    selections = []
    try:
        cards = [resolve_model(s) for s in specs]
        for card in cards:
            selection = select_backend(card, backend=args.backend)
            selections.append(selection)
            print(f"{card.name}: {selection.describe()}", file=sys.stderr)
    except (ModelCardError, BackendUnavailableError, ValueError) as exc:
        _err(f"error: {exc}")
        for s in selections:
            with contextlib.suppress(Exception):
                s.backend.close()
        return 1
    names = _unique([c.name for c in cards])
    out = Path(args.out) if args.out else Path(f"compare-{input_path.stem or 'input'}")
    printer = ProgressPrinter(sys.stderr)
    started = time.monotonic()

    def on_progress(p: CompareProgress) -> None:
        eta = (p.total - p.done) / p.fps if p.total and p.fps > 0 else None
        printer(
            Progress(
                file_index=0,
                file_count=1,
                input=input_path,
                frames_done=p.done,
                frames_total=p.total,
                fps=p.fps,
                eta=eta,
                overall_done=p.done,
                overall_total=p.total or 0,
                overall_eta=eta,
                file_done=p.total is not None and p.done >= p.total,
            )
        )

    metrics = None
    if args.reference is not None and not args.no_lpips:
        lpips, why = load_lpips_metric()
        if lpips is None:
            _err(f"note: LPIPS left out ({why})")
        else:
            metrics = [*PAIRED_METRICS, lpips]
    try:
        result = run_comparison(
            input_path,
            list(zip(names, (s.backend for s in selections), strict=True)),
            args.reference,
            limit=args.limit,
            metrics=metrics,
            progress=on_progress,
        )
        result.inputs["models"] = ", ".join(names)
        result.inputs["backend"] = "; ".join(s.label for s in selections)
        files = write_report(result, out, plots=not args.no_plots)
    except CompareError as exc:
        printer.clear()
        _err(f"error: {exc}")
        return 1
    except OSError as exc:
        printer.clear()
        _err(f"error: cannot write the report in {out}: {exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        printer.clear()
        _err("interrupted: no report written")
        return 130
    finally:
        for s in selections:
            with contextlib.suppress(Exception):
                s.backend.close()
    printer.clear()
    for warning in result.warnings:
        _err(f"warning: {warning}")
    if files.plot_note:
        _err(f"note: {files.plot_note}")
    mode = "paired" if result.paired else "unpaired"
    seconds = time.monotonic() - started
    print(f"{len(result.frames)} frames compared ({mode}) in {seconds:.1f} s")
    print(format_summary(result))
    print(f"wrote {files.csv}, {len(files.plots)} plots, {files.html}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rtdeblur compare`` on its own (``python -m engine.cli_compare``)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Compare models' quality on a clip.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
