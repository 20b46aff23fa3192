"""The Compare panel: two models (or one against the original) on the loaded clip, scored live.

The panel picks side A and side B (a model card or "Original"), then a :class:`CompareWorker`
in its own QThread runs the engine's comparison core (:func:`engine.compare.run_comparison`)
on a fresh reader of the clip: against a sharp reference (a video or image folder of the
same frames, chosen in the panel) with PSNR and SSIM, or without one with no-reference
sharpness measures and flicker. Each frame's scores arrive through a queued signal and extend
a live line chart; the latest two results are shown in an A/B
:class:`~app.comparison_view.ComparisonView`. When the run ends, "Export report…" writes the
engine's report (CSV, plots, HTML) from the worker thread.

No pixel work happens here: scoring and display conversion are engine calls made in the
worker thread; the GUI thread wraps finished display frames into QImages and paints.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QThread, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.comparison_view import ComparisonView, ViewMode
from app.frame_slot import LatestSlot
from app.images import display_qimage
from app.sources import OpenedSource
from engine.backends.base import BackendUnavailableError
from engine.backends.select import select_backend
from engine.compare import (
    FLICKER,
    INPUT,
    PAIRED_METRICS,
    UNPAIRED_METRICS,
    CompareError,
    ComparisonResult,
    FrameResult,
    ReportFiles,
    run_comparison,
    write_report,
)
from engine.modelcard import ModelCard, ModelCardError
from engine.pipeline.compose import to_display

ORIGINAL = "Original"
SERIES_COLORS = ("#4c78a8", "#e45756", "#54a24b", "#f58518")
VIEW_INTERVAL_S = 0.066  # the A/B view follows at ~15 fps: enough to watch, cheap to convert
METRIC_CHOICES = [(m.name, m.label) for m in UNPAIRED_METRICS] + [
    (FLICKER, "Flicker (mean |Δ| to previous frame)")
]
PAIRED_METRIC_CHOICES = [(m.name, m.label) for m in PAIRED_METRICS]
NO_REFERENCE = "None: no-reference sharpness"


@dataclass(frozen=True)
class CompareRequest:
    """One comparison run.

    Attributes:
        source: the clip (video file or image folder).
        a: side A's model card, or ``None`` for the original.
        b: side B's model card, or ``None`` for the original.
        backend: the ``select_backend`` name.
        device: its device (``None``: its usual one).
        limit: compare at most this many frames.
        reference: the sharp version of the clip (video or image folder) for PSNR and SSIM;
            ``None``: no-reference measures.
    """

    source: Path
    a: ModelCard | None
    b: ModelCard | None
    backend: str = "auto"
    device: str | None = None
    limit: int | None = None
    reference: Path | None = None

    def subject_names(self) -> tuple[str, str]:
        """The result subjects shown as A and B (``input`` for the original)."""
        if self.a is not None and self.b is not None and self.a.name == self.b.name:
            return f"{self.a.name} (A)", f"{self.b.name} (B)"
        return (
            self.a.name if self.a is not None else INPUT,
            self.b.name if self.b is not None else INPUT,
        )


@dataclass
class ABViews:
    """The latest pair of display frames for the A/B view, made in the worker thread."""

    index: int
    a: np.ndarray  # (H, W, 4) uint8, Qt's RGB32 layout
    b: np.ndarray
    size: tuple[int, int]


class CompareWorker(QObject):
    """Runs comparisons and writes reports in the thread it is moved to.

    Signals:
        frame_scored(FrameResult): one frame's scores.
        views_ready(): a new :class:`ABViews` waits in :attr:`views`.
        finished(ComparisonResult): the run ended (``cancelled`` set when stopped).
        failed(str): the run could not start or stopped on an error.
        report_written(object): :class:`ReportFiles`, or an error message.
    """

    frame_scored = Signal(object)
    views_ready = Signal()
    finished = Signal(object)
    failed = Signal(str)
    report_written = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()  # set from the GUI thread: the run slot is busy
        self.views: LatestSlot[ABViews] = LatestSlot(drop_oldest=True)
        self._last_view = 0.0

    @Slot(object)
    def run(self, request: CompareRequest) -> None:
        """Run ``request`` to the end (or until :attr:`cancel` is set)."""
        self.cancel.clear()
        self.views.clear()
        selections = []
        try:
            models = []
            name_a, name_b = request.subject_names()
            for card, name in ((request.a, name_a), (request.b, name_b)):
                if card is None:
                    continue
                selection = select_backend(card, request.backend, request.device)
                selections.append(selection)
                models.append((name, selection.backend))
            # Which result stands for A and B: 0 is the input, then the models in order.
            slot_a = 0 if request.a is None else 1
            slot_b = 0 if request.b is None else len(models)

            def show(index: int, image: np.ndarray, outputs: list[np.ndarray]) -> None:
                now = time.monotonic()
                if now - self._last_view < VIEW_INTERVAL_S:
                    return
                self._last_view = now
                frames = [image, *outputs]
                h, w = image.shape[:2]
                views = ABViews(
                    index, to_display(frames[slot_a]), to_display(frames[slot_b]), (w, h)
                )
                if self.views.put(views):
                    self.views_ready.emit()

            result = run_comparison(
                request.source,
                models,
                request.reference,
                limit=request.limit,
                on_frame=lambda f: self.frame_scored.emit(f),
                on_images=show,
                cancel=self.cancel,
            )
            result.inputs["models"] = f"A: {name_a}, B: {name_b}"
            result.inputs["backend"] = "; ".join(s.label for s in selections) or "none"
        except (CompareError, ModelCardError, BackendUnavailableError, ValueError) as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a model failing mid-run must not kill the thread
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        finally:
            for s in selections:
                s.backend.close()
        self.finished.emit(result)

    @Slot(object, str)
    def export(self, result: ComparisonResult, folder: str) -> None:
        """Write the report of ``result`` into ``folder``."""
        try:
            files = write_report(result, folder)
        except OSError as exc:
            self.report_written.emit(f"Cannot write the report in {folder}: {exc}")
            return
        self.report_written.emit(files)


class MetricChart(QWidget):
    """A small live line chart: one series per subject, frame index on the x axis.

    Painted with QPainter (no chart library): QtCharts is not part of PySide6-Essentials.
    Values that are undefined (NaN, e.g. the first frame's flicker) leave a gap.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._series: dict[str, list[float]] = {}
        self.title = ""

    def clear(self, names: list[str] | None = None) -> None:
        """Remove every point (and set the series' names, in legend order)."""
        self._series = {n: [] for n in dict.fromkeys(names or [])}
        self.update()

    def set_title(self, title: str) -> None:
        """The metric's name, shown at the top left."""
        self.title = title
        self.update()

    def append(self, name: str, value: float) -> None:
        """Add the next frame's value to series ``name``."""
        self._series.setdefault(name, []).append(float(value))
        self.update()

    def series_names(self) -> list[str]:
        """The series, in legend order."""
        return list(self._series)

    def point_count(self, name: str) -> int:
        """Number of frames in series ``name`` (NaN gaps included)."""
        return len(self._series.get(name, []))

    def values(self, name: str) -> list[float]:
        """The values of series ``name``."""
        return list(self._series.get(name, []))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        """Axes, series lines and legend."""
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        fm = p.fontMetrics()
        plot = QRectF(self.rect()).adjusted(fm.horizontalAdvance("00000.0") + 8, 24, -10, -22)
        text = self.palette().text().color()
        p.setPen(text)
        p.drawText(QPointF(8, 16), self.title)
        finite = [v for vs in self._series.values() for v in vs if math.isfinite(v)]
        n = max((len(vs) for vs in self._series.values()), default=0)
        p.setPen(QPen(QColor(128, 128, 128), 1))
        p.drawRect(plot)
        if not finite or plot.width() < 10 or plot.height() < 10:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No data yet")
            return
        lo, hi = min(finite), max(finite)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        p.setPen(text)
        p.drawText(QPointF(4, plot.top() + fm.ascent()), f"{hi:.4g}")
        p.drawText(QPointF(4, plot.bottom()), f"{lo:.4g}")
        p.drawText(QPointF(plot.left(), plot.bottom() + fm.height() + 2), "0")
        last = f"frame {n - 1}"
        p.drawText(QPointF(plot.right() - fm.horizontalAdvance(last), plot.bottom() + 16), last)

        def point(i: int, v: float) -> QPointF:
            x = plot.left() + (plot.width() * i / (n - 1) if n > 1 else plot.width() / 2)
            return QPointF(x, plot.bottom() - (v - lo) / (hi - lo) * plot.height())

        legend_x = plot.left() + 8
        for k, (name, values) in enumerate(self._series.items()):
            color = QColor(SERIES_COLORS[k % len(SERIES_COLORS)])
            p.setPen(QPen(color, 1.6))
            path = QPainterPath()
            drawing = False
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    drawing = False
                    continue
                if drawing:
                    path.lineTo(point(i, v))
                else:
                    path.moveTo(point(i, v))
                    drawing = True
            p.drawPath(path)
            if len(values) == 1 and math.isfinite(values[0]):
                p.drawEllipse(point(0, values[0]), 2, 2)
            p.drawText(QPointF(legend_x, plot.top() + fm.ascent() + 4), name)
            legend_x += fm.horizontalAdvance(name) + 16


class ABView(ComparisonView):
    """The comparison view with side A's name where the main view says "Original"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.left_label = ORIGINAL
        self.set_empty_message("No comparison yet", "Choose A and B, then Run.")

    def _label(self, p: QPainter, pane: QRectF, text: str, *args, **kwargs) -> None:
        # ComparisonView names its left image "Original"; here the left image is side A.
        if text.startswith(ORIGINAL):
            text = self.left_label + text[len(ORIGINAL) :]
        super()._label(p, pane, text, *args, **kwargs)


class ComparePanel(QWidget):
    """Choose A and B, run them on the loaded clip, watch the scores, export the report.

    Args:
        backend_provider: returns ``(backend, device)`` for ``select_backend`` (the main
            window passes its current backend choice); default ``("auto", None)``.

    Signals:
        frame_scored(FrameResult): a frame was scored and added to the chart.
        run_finished(object): a :class:`ComparisonResult`, or an error message.
        report_exported(object): :class:`ReportFiles`, or an error message.
    """

    frame_scored = Signal(object)
    run_finished = Signal(object)
    report_exported = Signal(object)

    _request_run = Signal(object)
    _request_export = Signal(object, str)

    def __init__(
        self,
        backend_provider: Callable[[], tuple[str, str | None]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.backend_provider = backend_provider or (lambda: ("auto", None))
        self.source_path: Path | None = None
        self.reference_path: Path | None = None
        self.result: ComparisonResult | None = None
        self.frames: list[FrameResult] = []  # numbers only: the chart can switch metric
        self.request: CompareRequest | None = None
        self._running = False
        self._build()
        self._worker = CompareWorker()
        self._thread = QThread(self)
        self._thread.setObjectName("compare")
        self._worker.moveToThread(self._thread)
        self._request_run.connect(self._worker.run)
        self._request_export.connect(self._worker.export)
        self._worker.frame_scored.connect(self._on_frame_scored)
        self._worker.views_ready.connect(self._on_views_ready)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.report_written.connect(self._on_report_written)
        self._thread.start()
        self.set_cards([])

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        form = QFormLayout()
        self.a_combo = QComboBox()
        self.b_combo = QComboBox()
        self.metric_combo = QComboBox()
        self.reference_label = QLabel(NO_REFERENCE)
        self.reference_label.setWordWrap(True)
        self.reference_button = QPushButton("Choose…")
        self.reference_button.setToolTip(
            "The sharp version of the clip (a video or a folder of images with the same "
            "frames): scores become PSNR and SSIM against it"
        )
        self.reference_clear = QPushButton("Clear")
        reference_row = QHBoxLayout()
        reference_row.addWidget(self.reference_label, 1)
        reference_row.addWidget(self.reference_button)
        reference_row.addWidget(self.reference_clear)
        form.addRow("A", self.a_combo)
        form.addRow("B", self.b_combo)
        form.addRow("Reference", reference_row)
        form.addRow("Graph", self.metric_combo)
        self._fill_metrics()
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.export_button = QPushButton("Export report…")
        for b in (self.run_button, self.stop_button, self.export_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.status_label = QLabel("Open a video to compare models on it.")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.chart = MetricChart()
        layout.addWidget(self.chart, 1)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary_label)
        self.view = ABView()
        self.view.set_mode(ViewMode.SIDE_BY_SIDE)
        layout.addWidget(self.view, 2)
        self.run_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(self.stop)
        self.export_button.clicked.connect(lambda: self.export_report())
        self.metric_combo.currentIndexChanged.connect(lambda _: self._replot())
        self.reference_button.clicked.connect(lambda: self.choose_reference())
        self.reference_clear.clicked.connect(lambda: self.set_reference(None))
        self._update_buttons()

    # -- inputs ------------------------------------------------------------------------

    def set_cards(self, cards: list[ModelCard]) -> None:
        """The models to choose from (A defaults to the original, B to the first model)."""
        for combo, default in ((self.a_combo, 0), (self.b_combo, 1)):
            combo.clear()
            combo.addItem(ORIGINAL, None)
            for card in cards:
                combo.addItem(card.name, card)
            combo.setCurrentIndex(min(default, combo.count() - 1))
        self._update_buttons()

    @Slot(object)
    def set_source(self, opened: OpenedSource | str | os.PathLike | None) -> None:
        """The clip to compare on: an opened source (files and folders only) or a path."""
        path = None
        if isinstance(opened, OpenedSource):
            if not opened.live and opened.spec.startswith("file:"):
                path = Path(opened.spec.removeprefix("file:"))
        elif opened is not None:
            path = Path(opened)
        if path != self.source_path:
            self.set_reference(None)  # a reference belongs to one clip
        self.source_path = path
        if not self._running:
            self.status_label.setText(
                f"Clip: {path.name}" if path else "Compare needs a video file or image folder."
            )
        self._update_buttons()

    def set_reference(self, path: str | os.PathLike | None) -> None:
        """The sharp version of the clip (paired scores), or ``None`` (no-reference scores).

        It applies to the next run; a new clip clears it.
        """
        self.reference_path = Path(path) if path is not None else None
        name = self.reference_path.name if self.reference_path is not None else None
        self.reference_label.setText(name or NO_REFERENCE)
        self.reference_label.setToolTip(os.fspath(self.reference_path) if name else "")
        if not self._running:
            self._fill_metrics()
            self._replot()
        self._update_buttons()

    def choose_reference(self) -> bool:
        """Ask for the reference: a video file, or (cancelled) an image folder."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Sharp reference video (cancel to choose an image folder)",
            os.fspath(self.source_path.parent) if self.source_path else "",
            "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)",
        )
        if not path:
            path = QFileDialog.getExistingDirectory(self, "Folder of sharp reference images")
        if not path:
            return False
        self.set_reference(path)
        return True

    def _fill_metrics(self, paired: bool | None = None) -> None:
        paired = self.reference_path is not None if paired is None else paired
        choices = PAIRED_METRIC_CHOICES if paired else METRIC_CHOICES
        if [self.metric_combo.itemData(i) for i in range(self.metric_combo.count())] == [
            name for name, _ in choices
        ]:
            return
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        for name, label in choices:
            self.metric_combo.addItem(label, name)
        self.metric_combo.blockSignals(False)

    def _update_buttons(self) -> None:
        ready = self.source_path is not None and self.a_combo.count() > 0
        self.run_button.setEnabled(ready and not self._running)
        self.reference_button.setEnabled(self.source_path is not None and not self._running)
        self.reference_clear.setEnabled(self.reference_path is not None and not self._running)
        self.stop_button.setEnabled(self._running)
        self.export_button.setEnabled(self.result is not None and not self._running)

    # -- running -----------------------------------------------------------------------

    def start(self, limit: int | None = None) -> bool:
        """Run the chosen A and B on the clip.

        Args:
            limit: compare at most this many frames.

        Returns:
            Whether a run started.
        """
        if self._running or self.source_path is None:
            return False
        a, b = self.a_combo.currentData(), self.b_combo.currentData()
        if a is None and b is None:
            self.status_label.setText("Choose a model for A or B (both are the original).")
            return False
        backend, device = self.backend_provider()
        request = CompareRequest(
            self.source_path, a, b, backend, device, limit, self.reference_path
        )
        self._fill_metrics(paired=request.reference is not None)
        self.request = request
        self.result = None
        self.frames = []
        self._running = True
        name_a, name_b = request.subject_names()
        self.view.left_label = f"A: {name_a}"
        self.view.set_result_label(f"B: {name_b}")
        self.view.clear()
        self.summary_label.clear()
        self._replot()
        against = f" against {request.reference.name}" if request.reference else ""
        self.status_label.setText(f"Comparing on {self.source_path.name}{against}…")
        self._update_buttons()
        self._request_run.emit(request)
        return True

    @Slot()
    def stop(self) -> None:
        """Stop the run after the current frame (the partial result is kept)."""
        self._worker.cancel.set()

    def is_running(self) -> bool:
        """Whether a comparison runs."""
        return self._running

    def _series(self) -> list[tuple[str, str]]:
        # (legend, subject) for A and B; one series when both sides are the same subject.
        if self.request is None:
            return []
        name_a, name_b = self.request.subject_names()
        pairs = [(f"A: {name_a}", name_a), (f"B: {name_b}", name_b)]
        return pairs if name_a != name_b else pairs[:1]

    def _replot(self) -> None:
        metric = self.metric_combo.currentData()
        series = self._series()
        self.chart.set_title(self.metric_combo.currentText())
        self.chart.clear([legend for legend, _ in series])
        for frame in self.frames:
            for legend, subject in series:
                self.chart.append(legend, frame.values[subject].get(metric, math.nan))

    @Slot(object)
    def _on_frame_scored(self, frame: FrameResult) -> None:
        self.frames.append(frame)
        metric = self.metric_combo.currentData()
        for legend, subject in self._series():
            self.chart.append(legend, frame.values[subject].get(metric, math.nan))
        self.status_label.setText(f"Frame {frame.index + 1}…")
        self.frame_scored.emit(frame)

    @Slot()
    def _on_views_ready(self) -> None:
        views = self._worker.views.take()
        if views is None:
            return
        self.view.set_frames(
            display_qimage(views.a), display_qimage(views.b), size=views.size, keep=views
        )

    @Slot(object)
    def _on_finished(self, result: ComparisonResult) -> None:
        self._running = False
        self.result = result
        name_a, name_b = self.request.subject_names() if self.request else (INPUT, INPUT)
        lines = []
        for side, subject in (("A", name_a), ("B", name_b)):
            s = result.summary[subject]
            if result.paired:
                lines.append(
                    f"{side} {subject}: PSNR {s['psnr'].mean:.2f} dB, SSIM {s['ssim'].mean:.4f} "
                    "against the reference"
                )
                continue
            ratio = result.flicker_ratio.get(subject, math.nan)
            lines.append(
                f"{side} {subject}: Laplacian var {s['laplacian_var'].mean:.1f}, "
                f"gradient energy {s['gradient_energy'].mean:.1f}, "
                f"blur extent {s['blur_extent'].mean:.3f}, flicker ×{ratio:.2f} vs input"
            )
        self.summary_label.setText("\n".join(lines))
        stopped = " (stopped)" if result.cancelled else ""
        warnings = "".join(f" Note: {w}." for w in result.warnings)
        self.status_label.setText(f"Compared {len(result.frames)} frames{stopped}.{warnings}")
        self._update_buttons()
        self.run_finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._running = False
        self.status_label.setText(f"Comparison failed: {message}")
        self._update_buttons()
        self.run_finished.emit(message)

    # -- report ------------------------------------------------------------------------

    def export_report(self, folder: str | os.PathLike | None = None) -> bool:
        """Write the last result's report (CSV, plots, HTML) into ``folder`` (asked if None).

        Returns:
            Whether the export started (it finishes with ``report_exported``).
        """
        if self.result is None or self._running:
            return False
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export the comparison report")
            if not folder:
                return False
        self.status_label.setText(f"Writing the report in {folder}…")
        self.export_button.setEnabled(False)
        self._request_export.emit(self.result, os.fspath(folder))
        return True

    @Slot(object)
    def _on_report_written(self, outcome: ReportFiles | str) -> None:
        if isinstance(outcome, str):
            self.status_label.setText(outcome)
        else:
            note = f" ({outcome.plot_note})" if outcome.plot_note else ""
            self.status_label.setText(f"Report written: {outcome.html}{note}")
        self._update_buttons()
        self.report_exported.emit(outcome)

    def shutdown(self) -> None:
        """Stop a run and end the worker thread (the window calls this when it closes)."""
        self._worker.cancel.set()
        self._worker.views.close()
        self._thread.quit()
        self._thread.wait()
