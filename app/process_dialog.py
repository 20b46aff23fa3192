"""The "Process files…" dialog: a queue of files and folders deblurred with ``rtdeblur process``'s
code (:mod:`engine.process`), with per-file and total progress, ETA, cancel and a result list.

The work runs in a QThread that owns its own backend (built when the run starts, closed when it
ends), so the preview keeps running meanwhile. Progress arrives through signals, throttled to a
few updates a second; cancelling sets the job's ``threading.Event``: the file being written is
discarded (nothing is left under its final name) and the rest are listed as cancelled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QUrl, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.backends.select import Selection
from engine.process import (
    CANCELLED,
    FAILED,
    MEDIA_SUFFIXES,
    OK,
    PARTIAL,
    FileResult,
    ProcessError,
    ProcessOptions,
    Progress,
    plan_jobs,
    run_jobs,
)

log = logging.getLogger(__name__)

CODECS = (
    ("h264", "H.264 (MP4)"),
    ("h265", "H.265 (MP4)"),
    ("ffv1", "FFV1 lossless (MKV)"),
    ("png", "PNG sequence"),
)
STATUS_COLOURS = {
    OK: QColor(70, 160, 90),
    PARTIAL: QColor(200, 140, 20),
    FAILED: QColor(210, 60, 60),
    CANCELLED: QColor(130, 130, 130),
}


def format_eta(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``None`` → ``–``."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProcessRunner(QObject):
    """Plans and runs one queue in a worker thread; reports only through signals.

    Args:
        inputs: files and folders.
        output: output folder.
        options: processing options.
        backend_factory: builds the backend for the run (called in the worker thread).
        min_interval: seconds between progress reports (file ends are always reported).

    Signals:
        planned(list[Job]): the queue was checked; jobs with an ``error`` will fail.
        progress(Progress): after frames, throttled.
        finished(list[FileResult]): every job ended (ok, partial, failed or cancelled).
        failed(str): the run could not start (bad options, model or backend).
    """

    planned = Signal(object)
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        inputs: Sequence[str | os.PathLike],
        output: str | os.PathLike,
        options: ProcessOptions,
        backend_factory: Callable[[], Selection],
        min_interval: float = 0.1,
    ) -> None:
        super().__init__()
        self.inputs = [os.fspath(p) for p in inputs]
        self.output = Path(output)
        self.options = options
        self.backend_factory = backend_factory
        self.cancel = threading.Event()
        self._min_interval = min_interval
        self._last = 0.0

    def _report(self, progress: Progress) -> None:
        now = time.monotonic()
        if progress.file_done or now - self._last >= self._min_interval:
            self._last = now
            self.progress.emit(progress)

    @Slot()
    def run(self) -> None:
        """Plan, build the backend, process; always ends with ``finished`` or ``failed``."""
        try:
            jobs = plan_jobs(self.inputs, self.output, self.options)
        except ProcessError as exc:
            self.failed.emit(str(exc))
            return
        self.planned.emit(jobs)
        if all(job.error is not None for job in jobs):
            self.finished.emit([FileResult(j.input, None, FAILED, j.error or "") for j in jobs])
            return
        try:
            selection = self.backend_factory()
        except Exception as exc:
            self.failed.emit(f"cannot load the model: {exc}")
            return
        try:
            results = run_jobs(jobs, selection.backend, self.options, self._report, self.cancel)
        except Exception as exc:  # run_jobs reports per file; this is a bug or a crash
            log.debug("processing failed", exc_info=True)
            self.failed.emit(f"processing stopped: {type(exc).__name__}: {exc}")
            return
        finally:
            try:
                selection.backend.close()
            except Exception:
                log.debug("closing the processing backend failed", exc_info=True)
        self.finished.emit(results)


class _DropList(QListWidget):
    """The queue: accepts files and folders dropped on it."""

    paths_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        """Accept local files and folders."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        """Keep accepting while the drag moves over the list."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        """Add the dropped paths to the queue."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.paths_dropped.emit(paths)
            event.acceptProposedAction()


class ProcessDialog(QDialog):
    """Queue files and folders and deblur them into an output folder.

    Args:
        backend_factory: builds a backend for the current model (``None``: no model, the
            dialog says so and cannot start).
        model_text: the model and backend the run will use, shown to the user.
        output_folder: initial output folder.
        parent: the main window.

    Signals:
        run_finished(list[FileResult]): a run ended.
        output_folder_changed(Path): the user picked another output folder.
    """

    run_finished = Signal(object)
    output_folder_changed = Signal(object)

    def __init__(
        self,
        backend_factory: Callable[[], Selection] | None,
        model_text: str,
        output_folder: str | os.PathLike,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Process files")
        self.setMinimumSize(760, 560)
        self.backend_factory = backend_factory
        self.results: list[FileResult] = []
        self._thread: QThread | None = None
        self._runner: ProcessRunner | None = None
        self._last_progress: Progress | None = None

        self.queue = _DropList()
        self.queue.paths_dropped.connect(self.add_paths)
        add_files = QPushButton("Add files…")
        add_files.clicked.connect(self._choose_files)
        add_folder = QPushButton("Add folder…")
        add_folder.clicked.connect(self._choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.queue.clear)
        self._queue_buttons = [add_files, add_folder, self.remove_button, clear]
        buttons = QVBoxLayout()
        for b in self._queue_buttons:
            buttons.addWidget(b)
        buttons.addStretch(1)
        queue_box = QGroupBox("Queue — files and folders (drop them here)")
        queue_row = QHBoxLayout(queue_box)
        queue_row.addWidget(self.queue, 1)
        queue_row.addLayout(buttons)

        self.output_edit = QLineEdit(os.fspath(output_folder))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(browse)
        self.codec_combo = QComboBox()
        for key, text in CODECS:
            self.codec_combo.addItem(text, key)
        self.side_by_side_check = QCheckBox("Side by side (original | deblurred)")
        self.overwrite_check = QCheckBox("Replace existing outputs")
        self.model_label = QLabel(model_text)
        self.model_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Output folder:", out_row)
        form.addRow("Video format:", self.codec_combo)
        form.addRow("", self.side_by_side_check)
        form.addRow("", self.overwrite_check)
        form.addRow("Model:", self.model_label)
        self._option_widgets = [
            self.output_edit,
            browse,
            self.codec_combo,
            self.side_by_side_check,
            self.overwrite_check,
        ]

        self.file_label = QLabel("Not started")
        self.file_bar = QProgressBar()
        self.file_bar.setFormat("%p %")
        self.total_label = QLabel("")
        self.total_bar = QProgressBar()
        self.total_bar.setFormat("%p %")
        progress_box = QGroupBox("Progress")
        progress_layout = QVBoxLayout(progress_box)
        for w in (self.file_label, self.file_bar, self.total_label, self.total_bar):
            progress_layout.addWidget(w)

        self.result_tree = QTreeWidget()
        self.result_tree.setHeaderLabels(["Status", "File", "Frames", "Time", "Output / reason"])
        self.result_tree.setRootIsDecorated(False)
        self.result_tree.setAlternatingRowColors(True)
        header = self.result_tree.header()
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.summary_label = QLabel("")

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open output folder")
        self.open_button.clicked.connect(self.open_output_folder)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary_label, 1)
        for b in (self.open_button, self.start_button, self.cancel_button, close):
            bottom.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(queue_box, 2)
        layout.addLayout(form)
        layout.addWidget(progress_box)
        layout.addWidget(QLabel("Results"))
        layout.addWidget(self.result_tree, 2)
        layout.addLayout(bottom)
        if backend_factory is None:
            self.start_button.setEnabled(False)
            self.summary_label.setText("No model is loaded: choose one in the main window first.")

    # -- queue -------------------------------------------------------------------------

    def paths(self) -> list[str]:
        """The queued paths, in order."""
        return [self.queue.item(i).text() for i in range(self.queue.count())]

    @Slot(list)
    def add_paths(self, paths: Sequence[str | os.PathLike]) -> None:
        """Queue files or folders (each once)."""
        present = set(self.paths())
        for p in paths:
            text = os.fspath(p)
            if text not in present:
                self.queue.addItem(text)
                present.add(text)

    def _choose_files(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(MEDIA_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add files", "", f"Videos and images ({patterns});;All files (*)"
        )
        self.add_paths(files)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add folder")
        if folder:
            self.add_paths([folder])

    def _remove_selected(self) -> None:
        for item in self.queue.selectedItems():
            self.queue.takeItem(self.queue.row(item))

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)
            self.output_folder_changed.emit(Path(folder))

    def options(self) -> ProcessOptions:
        """The processing options chosen."""
        return ProcessOptions(
            codec=self.codec_combo.currentData(),
            side_by_side=self.side_by_side_check.isChecked(),
            overwrite=self.overwrite_check.isChecked(),
        )

    # -- running -----------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether a run is in progress."""
        return self._thread is not None

    @Slot()
    def start(self) -> None:
        """Start processing the queue."""
        if self.is_running() or self.backend_factory is None:
            return
        paths = self.paths()
        if not paths:
            self.summary_label.setText("Add files or folders to the queue first.")
            return
        output = self.output_edit.text().strip()
        if not output:
            self.summary_label.setText("Choose an output folder first.")
            return
        self.results = []
        self.result_tree.clear()
        self.summary_label.setText("Checking the files…")
        self.file_label.setText("Starting…")
        self.file_bar.setValue(0)
        self.total_bar.setValue(0)
        self.total_label.setText("")
        self._set_running(True)
        runner = ProcessRunner(paths, output, self.options(), self.backend_factory)
        thread = QThread(self)
        thread.setObjectName("process-files")
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        runner.planned.connect(self._on_planned)
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        self._runner, self._thread = runner, thread
        thread.start()

    @Slot()
    def cancel(self) -> None:
        """Stop the run: the current file is discarded, the rest are listed as cancelled."""
        if self._runner is not None:
            self._runner.cancel.set()
            self.cancel_button.setEnabled(False)
            self.summary_label.setText("Cancelling…")

    def _set_running(self, running: bool) -> None:
        for w in (*self._queue_buttons, *self._option_widgets):
            w.setEnabled(not running)
        self.start_button.setEnabled(not running and self.backend_factory is not None)
        self.cancel_button.setEnabled(running)

    def _end_thread(self) -> None:
        thread, self._thread = self._thread, None
        self._runner = None
        if thread is not None:
            thread.quit()
            thread.wait()
            thread.deleteLater()
        self._set_running(False)

    @Slot(object)
    def _on_planned(self, jobs) -> None:
        bad = sum(job.error is not None for job in jobs)
        text = f"{len(jobs)} file{'s' if len(jobs) != 1 else ''} to process"
        if bad:
            text += f" ({bad} cannot be processed: see the results)"
        self.summary_label.setText(text)

    @Slot(object)
    def _on_progress(self, p: Progress) -> None:
        self._last_progress = p
        name = p.input.name
        if p.frames_total:
            self.file_bar.setRange(0, p.frames_total)
            self.file_bar.setValue(min(p.frames_done, p.frames_total))
            frames = f"{p.frames_done}/{p.frames_total} frames"
        else:
            self.file_bar.setRange(0, 0)  # busy indicator: the length is unknown
            frames = f"{p.frames_done} frames"
        self.file_label.setText(
            f"File {p.file_index + 1} of {p.file_count}: {name} — {frames}, "
            f"{p.fps:.1f} fps, ETA {format_eta(p.eta)}"
        )
        if p.overall_total:
            self.total_bar.setRange(0, p.overall_total)
            self.total_bar.setValue(min(p.overall_done, p.overall_total))
        self.total_label.setText(
            f"All files: {p.overall_done}/{p.overall_total or '?'} frames, "
            f"ETA {format_eta(p.overall_eta)}"
        )

    @Slot(object)
    def _on_finished(self, results: list[FileResult]) -> None:
        self.results = list(results)
        for r in self.results:
            self._add_result(r)
        counts = {s: sum(r.status == s for r in results) for s in (OK, PARTIAL, FAILED, CANCELLED)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing processed"
        self.summary_label.setText(f"Done: {summary}.")
        self.file_label.setText("Finished")
        if self.file_bar.maximum() == 0:
            self.file_bar.setRange(0, 1)
        self.file_bar.setValue(self.file_bar.maximum())
        if not counts[CANCELLED]:
            self.total_bar.setValue(self.total_bar.maximum())
        self._end_thread()
        self.run_finished.emit(self.results)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.summary_label.setText(f"Could not run: {message}")
        self.file_label.setText("Stopped")
        self._end_thread()
        self.run_finished.emit([])

    def _add_result(self, r: FileResult) -> None:
        frames = str(r.frames) + (f"/{r.frames_expected}" if r.frames_expected else "")
        detail = r.reason if r.status != OK else os.fspath(r.output or "")
        if r.status == PARTIAL and r.output is not None:
            detail = f"{r.output} — {r.reason}"
        if r.warnings:
            detail += " (" + "; ".join(r.warnings) + ")"
        item = QTreeWidgetItem(
            [
                r.status,
                r.input.name,
                frames if r.status in (OK, PARTIAL) else "–",
                format_eta(r.seconds) if r.seconds else "–",
                detail,
            ]
        )
        item.setToolTip(1, os.fspath(r.input))
        item.setToolTip(4, detail)
        item.setForeground(0, QBrush(STATUS_COLOURS.get(r.status, QColor("gray"))))
        if r.status == FAILED:
            item.setForeground(4, QBrush(STATUS_COLOURS[FAILED]))
        self.result_tree.addTopLevelItem(item)

    def result_rows(self) -> list[tuple[str, str, str]]:
        """(status, file name, output or reason) per row of the result list."""
        rows = []
        for i in range(self.result_tree.topLevelItemCount()):
            item = self.result_tree.topLevelItem(i)
            rows.append((item.text(0), item.text(1), item.text(4)))
        return rows

    @Slot()
    def open_output_folder(self) -> None:
        """Show the output folder in the file manager."""
        folder = Path(self.output_edit.text().strip() or ".")
        if folder.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(os.fspath(folder.resolve())))
        else:
            self.summary_label.setText(f"{folder} does not exist yet.")

    def closeEvent(self, event) -> None:  # noqa: N802
        """Closing cancels a run and waits for it to discard its partial file."""
        if self.is_running():
            self.cancel()
            if self._thread is not None:
                self._thread.quit()
                self._thread.wait()
            self._thread = self._runner = None
            self._set_running(False)
        super().closeEvent(event)


__all__ = ["ProcessDialog", "ProcessRunner", "format_eta"]
