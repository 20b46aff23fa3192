"""``rtdeblur app``: start the desktop app (also ``python -m app``).

With no SOURCE it opens the bundled sample clip (``resources/sample.mp4``) when present.
``--benchmark-seconds N`` runs for N seconds, prints the pipeline statistics the app measured
(display-path time per frame, fps, latency, drops) and exits; with ``--passthrough`` the model
is replaced by a pass-through backend, so the figures are the app's own overhead.

Qt is imported only when the command runs, so ``rtdeblur --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.allocator import keep_freed_memory
from engine.backends.select import BACKENDS

PROG = "rtdeblur app"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``app`` command to the ``rtdeblur`` parser."""
    parser = subparsers.add_parser(
        "app",
        help="the desktop app: live webcam and file preview, original vs deblurred",
        description=(
            "Preview deblurring live: a camera, a video, an image or a folder of images, "
            "compared with the original side by side, split, toggled or as a heat map."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtdeblur app``."""
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="video, image or folder of images (default: the bundled sample clip)",
    )
    parser.add_argument(
        "--camera", metavar="N", help="open camera N (index or /dev/videoN) instead of a file"
    )
    parser.add_argument(
        "--model", help="model name (from its card) or path of a model card (NAME.json)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="inference backend (default: the last one used, else auto)",
    )
    parser.add_argument(
        "--overlap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="on the CPU, deblur two frames at once: more fps, about a frame more delay "
        "(default: the last setting, else on where there are 2+ cores)",
    )
    parser.add_argument(
        "--models-dir",
        metavar="DIR",
        default=None,
        help="folder of model cards (default: $RTDEBLUR_MODELS_DIR, else resources/models)",
    )
    parser.add_argument(
        "--settings",
        metavar="FILE",
        default=None,
        help="keep settings in this INI file instead of the user's (default: $RTDEBLUR_SETTINGS)",
    )
    parser.add_argument(
        "--passthrough",
        action="store_true",
        help="run a pass-through backend instead of a model (measures the app's own cost)",
    )
    parser.add_argument(
        "--benchmark-seconds",
        type=float,
        metavar="N",
        default=None,
        help="run for N seconds, print the pipeline statistics, and exit",
    )
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="with --benchmark-seconds: also write JSON"
    )
    parser.add_argument(
        "--view",
        choices=("side_by_side", "split", "toggle", "heatmap"),
        default=None,
        help="comparison mode to start in (default: the last one used)",
    )
    parser.add_argument(
        "--size",
        metavar="WxH",
        default=None,
        help="window size, e.g. 1600x900 (default: the last one used)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        default=None,
        help="with --benchmark-seconds: save a screenshot of the window just before exiting",
    )


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"{PROG}: error: --size must look like 1600x900, got {text!r}") from None
    return w, h


def format_report(report: dict, window) -> str:
    """The benchmark's printout: what ran, then the figures."""
    active = window.active_model
    opened = window.opened
    lines = [
        f"source: {opened.label} ({opened.source.width}x{opened.source.height})"
        if opened is not None
        else "source: none",
        f"model: {active.title}" if active is not None else "model: none",
        f"view: {window.view.mode().value}, scale {window.view.scale():.3f}, "
        f"view size {window.view.width()}x{window.view.height()}",
        f"frames measured: {report.get('frames', 0)} (after "
        f"{window.stats.warmup_frames} warm-up frames)",
    ]
    names = {
        "display_ms_median": "display path per frame, median (ms)",
        "display_ms_p95": "display path per frame, p95 (ms)",
        "display_ms_max": "display path per frame, max (ms)",
        "wrap_ms_median": "  of which wrapping + widget updates, median (ms)",
        "paint_ms_median": "  of which painting, median (ms)",
        "compose_ms_median": "worker composition per frame, median (ms)",
        "inference_ms_median": "inference per frame, median (ms)",
        "latency_ms_median": "capture to display, median (ms)",
        "capture_fps": "capture fps",
        "inference_fps": "inference fps",
        "display_fps": "display fps",
        "dropped": "dropped frames",
    }
    for key, name in names.items():
        value = report.get(key)
        if value is None:
            continue
        lines.append(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
    return "\n".join(lines)


def _no_display() -> str | None:
    """Why a window cannot be shown here (Linux without X11 or Wayland), else ``None``."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
        "run it in a desktop session, under xvfb-run, or headless with "
        "QT_QPA_PLATFORM=offscreen (e.g. with --benchmark-seconds)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the app with parsed arguments and return the exit status."""
    reason = _no_display()
    if reason is not None:
        # Qt would abort the process with a core dump; say it plainly instead.
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 1
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.comparison_view import ViewMode
    from app.main_window import SAMPLE_CLIP, MainWindow
    from app.qt_compat import binding_problem

    problem = binding_problem()
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 1
    keep_freed_memory()  # the preview's per-frame arrays reuse the pages of the last ones

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rtdeblur")
    app.setOrganizationName("rtdeblur")
    window = MainWindow(
        models_dir=args.models_dir,
        settings=args.settings,
        model=args.model,
        backend=args.backend,
        passthrough=args.passthrough,
        overlap=args.overlap,
    )
    if args.view:
        window.set_view_mode(ViewMode(args.view))
    if args.size:
        window.resize(*_size(args.size))
    window.show()
    opened = True
    if args.camera is not None:
        device = int(args.camera) if args.camera.isdigit() else args.camera
        opened = window.open_camera(device)
    elif args.source:
        opened = window.open_path(args.source)
    elif SAMPLE_CLIP.is_file():
        opened = window.open_sample()
    status = {"code": 0}
    compose_ms: list[float] = []
    if args.benchmark_seconds is not None:
        if not opened:
            print(f"{PROG}: error: {window.last_error}", file=sys.stderr)
            window.close()
            return 1
        window.pair_displayed.connect(lambda pair: compose_ms.append(pair.compose_ms))

        def finish() -> None:
            report = window.stats.report()
            if len(compose_ms) > window.stats.warmup_frames:
                ordered = sorted(compose_ms[window.stats.warmup_frames :])
                report["compose_ms_median"] = ordered[len(ordered) // 2]
            print(format_report(report, window))
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
            if args.screenshot:
                screen = window.screen()
                geometry = window.frameGeometry()
                shot = screen.grabWindow(
                    0, geometry.x(), geometry.y(), geometry.width(), geometry.height()
                )
                if shot.isNull() or not shot.save(os.fspath(args.screenshot)):
                    window.grab().save(os.fspath(args.screenshot))
            if not report.get("frames"):
                status["code"] = 1
                print(f"{PROG}: no frames were displayed", file=sys.stderr)
            window.close()
            app.quit()

        QTimer.singleShot(round(args.benchmark_seconds * 1000), finish)
    code = app.exec()
    return status["code"] or code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app``: the same options as ``rtdeblur app``."""
    parser = argparse.ArgumentParser(prog=PROG, description="The rtdeblur desktop app.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
