"""The main window: source bar, comparison view, playback bar, side panel, live statistics.

Threads (see the project's design notes): a :class:`~app.capture.CaptureThread` per source
fills a latest-frame slot; one :class:`~app.workers.InferenceWorker` in its own QThread owns
the backend and hands finished pairs to this window through a one-item display slot and a
queued signal; this window (the GUI thread) wraps them into QImages and paints them. Widgets
are touched only here. Closing the window stops the capture thread, finishes the recording
and releases the backend before the worker thread ends.

Errors keep the previous working state: a source that cannot be opened leaves the current one
playing; a model that cannot be loaded leaves the current one running; a backend that fails at
run time is replaced by the last one that worked. Each is reported in a dialog that does not
block the window, and in the status bar.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QThread, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QLineEdit,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QScrollArea,
    QTextEdit,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.backend_choices import (
    AUTO,
    BackendChoice,
    available_backend_choices,
    choice_for,
    precisions_for,
)
from app.capture import CaptureThread
from app.compare_panel import ComparePanel
from app.comparison_view import ComparisonView, ViewMode
from app.help_dialog import ShortcutsDialog
from app.images import display_qimage
from app.panels import PlaybackBar, SidePanel, format_time
from app.process_dialog import ProcessDialog
from app.recording import RecordingResult, RecordRequest
from app.settings import AppSettings
from app.shortcuts import HOLD_ORIGINAL, SHORTCUTS
from app.sources import OpenedSource, is_media_path, open_camera, open_path, parse_spec
from app.stats import DisplaySample, PipelineStats, StatsSnapshot
from app.workers import ActiveModel, FramePair, InferenceWorker, LoadRequest
from engine import __version__
from engine.backends.identity import IdentityBackend
from engine.backends.select import Selection, select_backend
from engine.backends.streams import auto_streams
from engine.modelcard import ModelCard, ModelCardError, find_cards, load_card
from engine.pipeline.compose import side_by_side
from engine.process import MEDIA_SUFFIXES
from engine.resources import DEFAULT_MODEL, MODELS_DIR, RESOURCES_DIR
from engine.video import SinkError, SourceError, list_cameras, write_image

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "RTDEBLUR_MODELS_DIR"
SAMPLE_CLIP = RESOURCES_DIR / "sample.mp4"
PASSTHROUGH = "pass-through"
SEEK_STEP_S = 5.0


def models_folder(folder: str | os.PathLike | None = None) -> Path:
    """The folder models are listed from: the argument, ``$RTDEBLUR_MODELS_DIR``, or the
    shipped ``resources/models``."""
    if folder is not None:
        return Path(folder)
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env) if env else MODELS_DIR


def passthrough_selection() -> Selection:
    """The pass-through "model": the app's own overhead with inference taking no time."""
    return Selection(IdentityBackend(), "pass-through (no inference)", [])


def build_selection(request: LoadRequest) -> Selection:
    """Build a new backend for ``request`` (used by the Process files dialog's thread).

    Offline work wants frames per second, so on a CPU it runs frames side by side
    (:func:`~engine.backends.streams.auto_streams`), like ``rtdeblur process``.
    """
    if request.factory is not None:
        return request.factory()
    return select_backend(
        request.card, request.backend, request.device, request.precision, streams=auto_streams()
    )


class MainWindow(QMainWindow):
    """The rtdeblur desktop app.

    Args:
        models_dir: where model cards are listed from (see :func:`models_folder`).
        settings: an :class:`AppSettings`, or the path of an INI file to keep settings in
            (``None``: ``$RTDEBLUR_SETTINGS`` or the platform's store).
        model: a model name or card path to start with (``None``: the last one used, else
            the default model, else the first listed).
        backend: a backend choice key (``onnxruntime-cpu``…) or a ``select_backend`` name
            (``auto``, ``onnxruntime``, ``torch``, ``tensorrt``); ``None``: the last used.
        passthrough: list and start with the pass-through backend (overhead measurements).
        overlap: run two frames at once on a CPU backend (``None``: the last setting, on by
            default); see :class:`~engine.pipeline.lanes.FrameLanes`.
        camera_lister: finds the cameras (``engine.video.list_cameras``; tests replace it).

    Signals:
        pair_displayed(FramePair): a new pair was painted.
        model_changed(ActiveModel | None): the running model changed.
        error_shown(str): an error was reported to the user.
        recording_finished(RecordingResult): a recording ended.
        snapshot_saved(object): a snapshot was written (list of paths) or failed (message).
        source_opened(OpenedSource): a new source started.
        source_stopped(str): the source stopped by itself (error or end of a live file).
    """

    pair_displayed = Signal(object)
    model_changed = Signal(object)
    error_shown = Signal(str)
    recording_finished = Signal(object)
    snapshot_saved = Signal(object)
    source_opened = Signal(object)
    source_stopped = Signal(str)

    _request_load = Signal(object)
    _request_intensity = Signal(float)
    _request_heatmap = Signal(bool)
    _request_display_scale = Signal(float)
    _request_source = Signal(int, object)
    _request_record = Signal(object)
    _request_stop_record = Signal()
    _request_shutdown = Signal()
    _snapshot_done = Signal(object)

    def __init__(
        self,
        models_dir: str | os.PathLike | None = None,
        settings: AppSettings | str | os.PathLike | None = None,
        *,
        model: str | None = None,
        backend: str | None = None,
        passthrough: bool = False,
        overlap: bool | None = None,
        camera_lister: Callable[[], list] = list_cameras,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if isinstance(settings, AppSettings) else AppSettings(settings)
        self.models_dir = models_folder(models_dir)
        self.passthrough = passthrough
        self.camera_lister = camera_lister
        self.stats = PipelineStats()
        self.current_pair: FramePair | None = None
        self.active_model: ActiveModel | None = None
        self.last_error: str | None = None
        self.last_recording: RecordingResult | None = None
        self.camera_message = ""
        self.cards: list[ModelCard] = []
        self.card_problems: list[str] = []
        self.backend_choices = available_backend_choices()
        self.opened: OpenedSource | None = None
        self._capture: CaptureThread | None = None
        self._generation = 0
        self._pending: tuple[FramePair, float, float] | None = None
        self._unpainted = 0
        self._recording = False
        self._record_started = 0.0
        self._loading: LoadRequest | None = None
        self._error_box: QMessageBox | None = None
        self._process_dialog: ProcessDialog | None = None
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self._snapshot_threads: list[threading.Thread] = []
        self._closed = False
        self._was_playing_before_seek = False

        self._sent_prescale = 1.0
        self._prescale_timer = QTimer(self)
        self._prescale_timer.setSingleShot(True)
        self._prescale_timer.setInterval(40)
        self._prescale_timer.timeout.connect(self._send_prescale)

        self.setWindowTitle("rtdeblur")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self._start_worker()
        self._build_ui()
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore_settings()
        if overlap is not None:
            self.panel.overlap_check.setChecked(overlap)
        self.refresh_cameras()
        self._load_cards()
        self._select_initial_model(model, backend)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(250)
        self._stats_timer.timeout.connect(self._update_stats)
        self._stats_timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    # -- construction ------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._worker = InferenceWorker()
        self._worker_thread = QThread(self)
        self._worker_thread.setObjectName("inference")
        self._worker.moveToThread(self._worker_thread)
        w = self._worker
        self._request_load.connect(w.load_model)
        self._request_intensity.connect(w.set_intensity)
        self._request_heatmap.connect(w.set_heatmap)
        self._request_display_scale.connect(w.set_display_scale)
        self._request_source.connect(w.set_source)
        self._request_record.connect(w.start_recording)
        self._request_stop_record.connect(w.stop_recording)
        # Blocking: closing waits until the recording is finished and the backend released.
        self._request_shutdown.connect(w.shutdown, Qt.ConnectionType.BlockingQueuedConnection)
        w.pair_ready.connect(self._on_pair_ready)
        w.model_loaded.connect(self._on_model_loaded)
        w.model_failed.connect(self._on_model_failed)
        w.runtime_failed.connect(self._on_runtime_failed)
        w.recording_finished.connect(self._on_recording_finished)
        self._snapshot_done.connect(self._on_snapshot_done)
        self._worker_thread.start()

    def _build_ui(self) -> None:
        self.view = ComparisonView()
        self.playback = PlaybackBar()
        self.playback.hide()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.playback)
        self.setCentralWidget(central)

        self.source_bar = QToolBar("Source")
        self.source_bar.setObjectName("source_bar")
        self.source_bar.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.source_bar)
        self.camera_combo = QComboBox()
        self.camera_combo.setMinimumContentsLength(22)
        self.camera_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.camera_refresh = QToolButton()
        self.camera_refresh.setText("⟳")
        self.camera_refresh.setToolTip("Look for cameras again")

        self.panel = SidePanel()
        self.dock = QDockWidget("Controls", self)
        self.dock.setObjectName("controls_dock")
        scroll = QScrollArea()  # small screens: the panel scrolls instead of growing the window
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.minimumSizeHint().width() + 16)
        self.dock.setWidget(scroll)
        self.dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        # Compare: a second dock, tabbed with the controls; it runs in its own thread on a
        # fresh reader of the opened clip, with the backend chosen in the side panel.
        self.compare_panel = ComparePanel(
            lambda: (self._backend_choice().backend, self._backend_choice().device)
        )
        self.compare_dock = QDockWidget("Compare", self)
        self.compare_dock.setObjectName("compare_dock")
        self.compare_dock.setWidget(self.compare_panel)
        self.compare_dock.setFeatures(self.dock.features())
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.compare_dock)
        self.tabifyDockWidget(self.dock, self.compare_dock)
        self.dock.raise_()
        self.source_opened.connect(self.compare_panel.set_source)

        self.stats_label = QLabel("No source")
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.record_label = QLabel()
        self.record_label.setStyleSheet("color: #e5484d; font-weight: bold;")
        self.record_label.hide()
        # The statistics give way to a status message while it shows (they are back a few
        # seconds later); the recording indicator stays.
        self.statusBar().addWidget(self.stats_label, 1)
        self.statusBar().addPermanentWidget(self.record_label)

    def _build_actions(self) -> None:
        self.actions_by_id: dict[str, QAction] = {}
        for item in SHORTCUTS:
            if item is HOLD_ORIGINAL:
                continue  # held, not triggered: see eventFilter
            action = QAction(item.text, self)
            action.setShortcuts([QKeySequence(k) for k in item.keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)  # shortcuts work with the menu bar hidden (full screen)
            self.actions_by_id[item.action] = action
        a = self.actions_by_id
        a["open_file"].setText("&Open…")
        a["open_sample"].setText("Open the &sample clip")
        a["open_sample"].setEnabled(SAMPLE_CLIP.is_file())
        a["record"].setText("&Record")
        a["record"].setCheckable(True)
        a["snapshot"].setText("&Snapshot")
        a["process_files"].setText("&Process files…")
        a["shortcuts"].setText("&Keyboard shortcuts")
        a["quit"].setText("&Quit")
        a["full_screen"].setCheckable(True)
        self.mode_actions: dict[ViewMode, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for mode in ViewMode:
            action = a[f"mode_{mode.value}"]
            action.setText(mode.label)
            action.setCheckable(True)
            group.addAction(action)
            self.mode_actions[mode] = action
        self.loop_action = QAction("&Loop", self)
        self.loop_action.setCheckable(True)
        self.output_action = QAction("Output &folder…", self)
        self.about_action = QAction("&About rtdeblur", self)
        self.reopen_action = QAction("Reopen the last source", self)

        self.source_bar.addWidget(QLabel(" Camera: "))
        self.source_bar.addWidget(self.camera_combo)
        self.source_bar.addWidget(self.camera_refresh)
        self.source_bar.addSeparator()
        self.source_bar.addAction(a["open_file"])
        self.source_bar.addAction(a["open_sample"])
        self.source_bar.addSeparator()
        self.source_label = QLabel("  No source")
        self.source_bar.addWidget(self.source_label)

    def _build_menus(self) -> None:
        a = self.actions_by_id
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(a["open_file"])
        file_menu.addAction(a["open_sample"])
        self.camera_menu = file_menu.addMenu("Open &camera")
        file_menu.addAction(self.reopen_action)
        file_menu.addSeparator()
        file_menu.addAction(a["record"])
        file_menu.addAction(a["snapshot"])
        file_menu.addAction(a["process_files"])
        file_menu.addAction(self.output_action)
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        view_menu = bar.addMenu("&View")
        for mode in ViewMode:
            view_menu.addAction(self.mode_actions[mode])
        view_menu.addSeparator()
        for key in ("zoom_fit", "zoom_actual", "zoom_in", "zoom_out"):
            view_menu.addAction(a[key])
        view_menu.addSeparator()
        view_menu.addAction(a["intensity_down"])
        view_menu.addAction(a["intensity_up"])
        view_menu.addSeparator()
        view_menu.addAction(self.dock.toggleViewAction())
        view_menu.addAction(a["full_screen"])
        play_menu = bar.addMenu("&Playback")
        for key in ("play_pause", "step_back", "step_forward", "seek_back", "seek_forward"):
            play_menu.addAction(a[key])
        play_menu.addAction(a["seek_start"])
        play_menu.addSeparator()
        play_menu.addAction(self.loop_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        help_menu.addAction(self.about_action)

    def _connect(self) -> None:
        a = self.actions_by_id
        a["open_file"].triggered.connect(self.choose_file)
        a["open_sample"].triggered.connect(self.open_sample)
        a["play_pause"].triggered.connect(self.toggle_play)
        a["step_back"].triggered.connect(lambda: self.step(-1))
        a["step_forward"].triggered.connect(lambda: self.step(1))
        a["seek_back"].triggered.connect(lambda: self.seek_relative(-SEEK_STEP_S))
        a["seek_forward"].triggered.connect(lambda: self.seek_relative(SEEK_STEP_S))
        a["seek_start"].triggered.connect(lambda: self.seek(0.0))
        for mode, action in self.mode_actions.items():
            action.triggered.connect(lambda _=False, m=mode: self.set_view_mode(m))
        a["zoom_fit"].triggered.connect(self.view.fit)
        a["zoom_actual"].triggered.connect(self.view.actual_size)
        a["zoom_in"].triggered.connect(lambda: self.view.zoom_by(1.25))
        a["zoom_out"].triggered.connect(lambda: self.view.zoom_by(0.8))
        a["intensity_down"].triggered.connect(lambda: self._nudge_intensity(-10))
        a["intensity_up"].triggered.connect(lambda: self._nudge_intensity(10))
        a["full_screen"].toggled.connect(self._set_full_screen)
        a["record"].triggered.connect(self.toggle_recording)
        a["snapshot"].triggered.connect(self.snapshot)
        a["process_files"].triggered.connect(self.open_process_dialog)
        a["shortcuts"].triggered.connect(self.show_shortcuts)
        a["quit"].triggered.connect(self.close)
        self.loop_action.toggled.connect(self._set_loop)
        self.output_action.triggered.connect(self.choose_output_folder)
        self.about_action.triggered.connect(self._about)
        self.reopen_action.triggered.connect(self.reopen_last_source)

        p = self.panel
        p.model_list.currentItemChanged.connect(self._on_model_selected)
        p.backend_combo.activated.connect(self._on_backend_chosen)
        p.precision_combo.activated.connect(self._on_precision_chosen)
        p.overlap_check.toggled.connect(self._on_overlap_toggled)
        p.intensity_slider.valueChanged.connect(self._on_intensity)
        for mode, button in p.mode_buttons.items():
            button.clicked.connect(lambda _=False, m=mode: self.set_view_mode(m))
        p.fit_button.clicked.connect(self.view.fit)
        p.actual_button.clicked.connect(self.view.actual_size)
        p.record_button.clicked.connect(self.toggle_recording)
        p.snapshot_button.clicked.connect(self.snapshot)
        p.output_button.clicked.connect(self.choose_output_folder)
        p.process_button.clicked.connect(self.open_process_dialog)
        p.record_mode_combo.currentIndexChanged.connect(
            lambda _: setattr(self.settings, "record_mode", p.record_mode_combo.currentData())
        )

        pb = self.playback
        pb.play_button.clicked.connect(self.toggle_play)
        pb.back_button.clicked.connect(lambda: self.step(-1))
        pb.forward_button.clicked.connect(lambda: self.step(1))
        pb.loop_button.toggled.connect(self.loop_action.setChecked)
        self.loop_action.toggled.connect(pb.loop_button.setChecked)
        pb.seek_slider.sliderPressed.connect(self._on_seek_pressed)
        pb.seek_slider.sliderMoved.connect(lambda v: self.seek(v / 1000.0))
        pb.seek_slider.sliderReleased.connect(self._on_seek_released)
        pb.seek_slider.actionTriggered.connect(self._on_seek_action)

        self.view.zoom_changed.connect(self._on_zoom_changed)
        self.view.frame_painted.connect(self._on_frame_painted)
        self.view.split_changed.connect(lambda v: setattr(self.settings, "split", v))
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.camera_refresh.clicked.connect(self.refresh_cameras)

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.geometry
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.window_state
        if state is not None:
            self.restoreState(state)
        self.view.set_split(s.split)
        self.loop_action.setChecked(s.loop)
        self.playback.loop_button.setChecked(s.loop)
        overlappable = auto_streams() > 1  # one core has nothing to overlap on
        self.panel.overlap_check.setChecked(s.overlap and overlappable)
        self.panel.overlap_check.setEnabled(overlappable)
        index = self.panel.record_mode_combo.findData(s.record_mode)
        self.panel.record_mode_combo.setCurrentIndex(max(index, 0))
        value = round(s.intensity * 100)
        self.panel.intensity_slider.setValue(value)
        self._request_intensity.emit(value / 100.0)
        self.set_view_mode(ViewMode.parse(s.view_mode))
        self._show_output_folder()

    def save_settings(self) -> None:
        """Write the window's state to the settings (also done when it closes)."""
        s = self.settings
        s.geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.view_mode = self.view.mode().value
        s.split = self.view.split()
        s.intensity = self.panel.intensity_slider.value() / 100.0
        s.loop = self.loop_action.isChecked()
        s.record_mode = self.panel.record_mode_combo.currentData()
        if self.active_model is not None and self.active_model.name != PASSTHROUGH:
            s.model = self.active_model.name
        s.backend = self._backend_choice().key
        s.precision = self.panel.precision_combo.currentData() or ""
        s.overlap = self.panel.overlap_check.isChecked()
        s.sync()

    # -- sources -----------------------------------------------------------------------

    @Slot()
    def refresh_cameras(self) -> None:
        """List the cameras again (combo box and File → Open camera)."""
        try:
            cameras = self.camera_lister()
        except Exception as exc:  # a broken device listing must not stop the app
            cameras = []
            self.camera_message = f"cannot list cameras: {exc}"
        else:
            self.camera_message = getattr(cameras, "message", "") or (
                "no cameras found" if not cameras else ""
            )
        self.cameras = list(cameras)
        combo = self.camera_combo
        combo.clear()
        self.camera_menu.clear()
        if not cameras:
            combo.addItem("No camera found")
            combo.setEnabled(False)
            combo.setToolTip(self.camera_message)
            none = self.camera_menu.addAction("No camera found")
            none.setEnabled(False)
            none.setToolTip(self.camera_message)
            return
        combo.setEnabled(True)
        combo.setToolTip("Open a camera")
        combo.addItem("Choose a camera…", None)
        for cam in cameras:
            device = cam.path or cam.index
            combo.addItem(str(cam), device)
            action = self.camera_menu.addAction(str(cam))
            action.triggered.connect(lambda _=False, d=device: self.open_camera(d))

    @Slot(int)
    def _on_camera_chosen(self, index: int) -> None:
        device = self.camera_combo.itemData(index)
        if device is not None:
            self.open_camera(device)

    @Slot()
    def choose_file(self) -> None:
        """Ask for a video, an image or a folder and open it."""
        start = ""
        parsed = parse_spec(self.settings.last_source)
        if parsed and parsed[0] == "file":
            start = os.fspath(Path(parsed[1]).parent)
        patterns = " ".join(f"*{s}" for s in sorted(MEDIA_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a video or an image", start, f"Videos and images ({patterns});;All (*)"
        )
        if path:
            self.open_path(path)

    @Slot()
    def open_sample(self) -> bool:
        """Open the bundled sample clip."""
        if not SAMPLE_CLIP.is_file():
            self.show_error("No sample clip", f"The sample clip is missing: {SAMPLE_CLIP}")
            return False
        return self.open_path(SAMPLE_CLIP)

    def open_path(self, path: str | os.PathLike, playing: bool = True) -> bool:
        """Open a video, an image or a folder of images; on failure keep the current source.

        Returns:
            Whether it opened.
        """
        try:
            opened = open_path(path)
        except (SourceError, OSError) as exc:
            self.show_error("Cannot open this file", str(exc))
            return False
        self.open_source(opened, playing=playing)
        return True

    def open_camera(self, device: int | str | os.PathLike) -> bool:
        """Open a camera (index or device path; a video file path goes through the camera
        code too). On failure keep the current source.

        Returns:
            Whether it opened.
        """
        try:
            opened = open_camera(device)
        except (SourceError, OSError) as exc:
            self.show_error("Cannot open the camera", str(exc))
            return False
        self.open_source(opened)
        return True

    @Slot()
    def reopen_last_source(self) -> bool:
        """Open the source used last time."""
        parsed = parse_spec(self.settings.last_source)
        if parsed is None:
            self.statusBar().showMessage("No previous source", 4000)
            return False
        kind, value = parsed
        if kind == "camera":
            return self.open_camera(int(value) if value.isdigit() else value)
        return self.open_path(value)

    def open_source(self, opened: OpenedSource, playing: bool = True) -> None:
        """Start playing an opened source in place of the current one."""
        if self._recording:
            self.stop_recording()
            self.statusBar().showMessage("Recording stopped: the source changed", 5000)
        self._stop_capture()
        self._generation += 1
        self._request_source.emit(self._generation, opened.source.fps)
        capture = CaptureThread(
            opened,
            self._generation,
            playing=playing,
            loop=self.loop_action.isChecked(),
            parent=self,
        )
        capture.frame_ready.connect(self._worker.process_pending)
        capture.failed.connect(self._on_capture_failed)
        capture.ended.connect(self._on_capture_ended)
        capture.playing_changed.connect(self.playback.set_playing)
        self._capture, self.opened = capture, opened
        self.current_pair = None
        self._pending = None
        self.stats.clear()
        self.stats.reset_totals()
        self._unpainted = 0
        capture.start()
        self.playback.setVisible(opened.seekable)
        self.playback.set_duration(opened.duration)
        self.playback.set_position(0.0)
        self.playback.set_playing(capture.playing and opened.seekable)
        for key in (
            "play_pause",
            "step_back",
            "step_forward",
            "seek_back",
            "seek_forward",
            "seek_start",
        ):
            self.actions_by_id[key].setEnabled(opened.seekable)
        size = f"{opened.source.width}×{opened.source.height}"
        self.source_label.setText(f"  {opened.label} · {size}")
        self.setWindowTitle(f"rtdeblur — {opened.label}")
        self.settings.last_source = opened.spec
        self.statusBar().showMessage(f"Opened {opened.label}", 3000)
        self.source_opened.emit(opened)

    def _stop_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stop()
            capture.wait()
            capture.deleteLater()

    @Slot(int, str)
    def _on_capture_failed(self, generation: int, message: str) -> None:
        if generation != self._generation or self._capture is None:
            return
        label = self.opened.label if self.opened else "the source"
        live = self.opened is not None and self.opened.live
        self._stop_capture()
        if self._recording:
            self.stop_recording()
        self.playback.set_playing(False)
        title = "The camera stopped" if live else f"Cannot read {label}"
        self.show_error(
            title, f"{message}\n\nThe last frame stays on screen; open another source or try again."
        )
        self.source_label.setText(f"  {label} · stopped")
        self.source_stopped.emit(message)

    @Slot(int)
    def _on_capture_ended(self, generation: int) -> None:
        if generation != self._generation or self.opened is None:
            return
        if self.opened.live:
            self.statusBar().showMessage(f"{self.opened.label} ended", 5000)
            self.source_stopped.emit("ended")
        else:
            self.playback.set_playing(False)
            self.statusBar().showMessage("End of the video", 3000)

    # -- playback ----------------------------------------------------------------------

    @Slot()
    def toggle_play(self) -> None:
        """Play or pause the file."""
        if self._capture is not None and self.opened is not None and self.opened.seekable:
            playing = not self._capture.playing
            at_end = (
                self.current_pair is not None
                and self.opened.duration is not None
                and self.current_pair.captured.media_time >= self.opened.duration - 0.2
            )
            if playing and at_end and not self.loop_action.isChecked():
                self._capture.seek(0.0)  # Play at the end of a file: start again from the top
            self._capture.set_playing(playing)

    def set_playing(self, playing: bool) -> None:
        """Play or pause the file."""
        if self._capture is not None:
            self._capture.set_playing(playing)

    def step(self, frames: int) -> None:
        """Pause and step ``frames`` frames."""
        if self._capture is not None:
            self._capture.step(frames)

    def seek(self, seconds: float) -> None:
        """Show the frame at ``seconds``."""
        if self._capture is not None:
            duration = self.opened.duration if self.opened is not None else None
            if duration:
                seconds = min(seconds, max(duration - 1e-3, 0.0))
            self._capture.seek(seconds)

    def seek_relative(self, delta: float) -> None:
        """Seek ``delta`` seconds from the frame shown."""
        now = self.current_pair.captured.media_time if self.current_pair else 0.0
        self.seek(max(0.0, now + delta))

    def _on_seek_pressed(self) -> None:
        if self._capture is not None:
            self._was_playing_before_seek = self._capture.playing
            self._capture.set_playing(False)

    def _on_seek_released(self) -> None:
        self.seek(self.playback.seek_slider.value() / 1000.0)
        if self._capture is not None and self._was_playing_before_seek:
            self._capture.set_playing(True)

    def _on_seek_action(self, action: int) -> None:
        # Clicks on the groove (page steps) seek too; drags are handled by sliderMoved.
        if not self.playback.seek_slider.isSliderDown():
            QTimer.singleShot(0, lambda: self.seek(self.playback.seek_slider.value() / 1000.0))

    def _set_loop(self, loop: bool) -> None:
        if self._capture is not None:
            self._capture.set_loop(loop)

    # -- models and backends -----------------------------------------------------------

    def _load_cards(self) -> None:
        folder = self.models_dir
        if folder.is_dir():
            self.cards, self.card_problems = find_cards(folder)
        else:
            self.cards, self.card_problems = [], []
        lst = self.panel.model_list
        lst.blockSignals(True)
        lst.clear()
        if self.passthrough:
            item = QListWidgetItem("Pass-through (no model)")
            item.setData(Qt.ItemDataRole.UserRole, PASSTHROUGH)
            item.setToolTip("Frames go through unchanged: measures the app's own overhead")
            lst.addItem(item)
        for card in self.cards:
            self._add_card_item(card)
        lst.blockSignals(False)
        message = ""
        if not self.cards:
            message = (
                f"No model found in {folder}. The preview shows the original unchanged. "
                "Put a model there (NAME.onnx with its NAME.json card, e.g. from "
                "`rtdeblur export`), or point the app at another folder with --models-dir."
            )
        if self.card_problems:
            message += (
                ("\n" if message else "") + "Unreadable cards: " + "; ".join(self.card_problems)
            )
        self.panel.model_message.setText(message)
        self.panel.model_message.setVisible(bool(message))
        self.panel.model_list.setVisible(lst.count() > 0)
        self.compare_panel.set_cards(self.cards)
        self.panel.fit_model_list()
        if not self.cards and not self.passthrough:
            self.view.set_notice("No model: the result shows the original")

    def _add_card_item(self, card: ModelCard) -> QListWidgetItem:
        item = QListWidgetItem(card.name)
        item.setData(Qt.ItemDataRole.UserRole, card)
        item.setToolTip(card.description or card.architecture)
        self.panel.model_list.addItem(item)
        return item

    def _card_item(self, name: str) -> QListWidgetItem | None:
        lst = self.panel.model_list
        for i in range(lst.count()):
            data = lst.item(i).data(Qt.ItemDataRole.UserRole)
            if data == name or (isinstance(data, ModelCard) and data.name == name):
                return lst.item(i)
        return None

    def _select_initial_model(self, model: str | None, backend: str | None) -> None:
        self._fill_backends(backend)
        lst = self.panel.model_list
        item = None
        if self.passthrough:
            item = self._card_item(PASSTHROUGH)
        elif model is not None:
            item = self._card_item(model)
            if item is None:
                try:
                    card = load_card(model) if model.endswith(".json") else None
                except ModelCardError as exc:
                    self.show_error("Cannot load the model", str(exc))
                    card = None
                if card is not None:
                    item = self._add_card_item(card)
                    self.panel.model_list.setVisible(True)
                    self.panel.fit_model_list()
                else:
                    self.show_error(
                        "No such model",
                        f"No model named {model!r} in {self.models_dir}.",
                    )
        if item is None and self.settings.model:
            item = self._card_item(self.settings.model)
        if item is None:
            item = self._card_item(DEFAULT_MODEL)
        if item is None and lst.count():
            item = lst.item(0)
        if item is not None:
            lst.setCurrentItem(item)  # requests the load
        else:
            self._update_model_info(None)

    def _fill_backends(self, backend: str | None) -> None:
        combo = self.panel.backend_combo
        combo.clear()
        for choice in self.backend_choices:
            combo.addItem(choice.label, choice.key)
        key = self.settings.backend if backend is None else backend
        choice = self._choice_from(key)
        combo.setCurrentIndex(max(combo.findData(choice.key), 0))

    def _choice_from(self, key: str) -> BackendChoice:
        if any(c.key == key for c in self.backend_choices):
            return choice_for(key, self.backend_choices)
        # A select_backend name: its usual device (onnxruntime → CPU, torch → CUDA if here).
        matching = [c for c in self.backend_choices if c.backend == key]
        if key in ("torch", "tensorrt"):
            matching.sort(key=lambda c: c.device != "cuda")
        if matching:
            return matching[0]
        if key not in ("", "auto"):
            QTimer.singleShot(
                0,
                lambda: self.show_error(
                    "Backend not available", f"The {key} backend is not available here."
                ),
            )
        return AUTO

    def _backend_choice(self) -> BackendChoice:
        return choice_for(self.panel.backend_combo.currentData() or "auto", self.backend_choices)

    def _selected_card(self) -> ModelCard | str | None:
        item = self.panel.model_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _fill_precisions(self) -> None:
        card = self._selected_card()
        options = precisions_for(
            self._backend_choice(), card if isinstance(card, ModelCard) else None
        )
        combo = self.panel.precision_combo
        current = combo.currentData() or self.settings.precision
        combo.clear()
        if not options:
            combo.addItem("automatic", "")
            combo.setEnabled(False)
            return
        combo.setEnabled(len(options) > 1)
        for p in options:
            combo.addItem(p, p)
        combo.setCurrentIndex(max(combo.findData(current), 0))

    def _load_request(self) -> LoadRequest | None:
        card = self._selected_card()
        if card is None:
            return None
        if card == PASSTHROUGH:
            return LoadRequest(None, factory=passthrough_selection, name=PASSTHROUGH)
        choice = self._backend_choice()
        precision = self.panel.precision_combo.currentData() or None
        streams = auto_streams() if self.panel.overlap_check.isChecked() else 1
        return LoadRequest(card, choice.backend, choice.device, precision, streams=streams)

    def request_load(self, request: LoadRequest | None = None) -> None:
        """Load a model and backend in the worker thread: ``request``, or the ones selected
        in the side panel. The current one runs until the new one has loaded."""
        request = request or self._load_request()
        if request is None:
            return
        self._loading = request
        where = self._backend_choice().label if request.factory is None else "its backend"
        self.panel.active_label.setText(f"Loading {request.model_name} on {where}…")
        self.view.set_notice(f"Loading {request.model_name}…")
        self._request_load.emit(request)

    def _on_model_selected(self, current: QListWidgetItem | None, _previous=None) -> None:
        card = current.data(Qt.ItemDataRole.UserRole) if current is not None else None
        self._update_model_info(card)
        self._fill_precisions()
        self.request_load()

    def _on_backend_chosen(self, *_: object) -> None:
        self._fill_precisions()
        self.request_load()

    def _on_precision_chosen(self, *_: object) -> None:
        self.request_load()

    def _on_overlap_toggled(self, _checked: bool) -> None:
        if self.active_model is not None or self._loading is not None:
            self.request_load()

    def _update_model_info(self, card: ModelCard | str | None) -> None:
        if card == PASSTHROUGH:
            text = "Frames pass through unchanged; the statistics show the app's own cost."
        elif isinstance(card, ModelCard):
            lines = [card.description or card.architecture]
            facts = [f"architecture {card.architecture}", f"version {card.version}"]
            if card.params:
                facts.append(f"{card.params / 1e6:.2f} M parameters")
            lines.append(", ".join(facts))
            lines.append(_training_line(card.training))
            metrics = card.metrics or {}
            if isinstance(metrics.get("psnr"), (int, float)):
                line = f"Validation PSNR {metrics['psnr']:.2f} dB"
                if isinstance(metrics.get("psnr_gain"), (int, float)):
                    line += f" ({metrics['psnr_gain']:+.2f} dB over the blurry input)"
                lines.append(line)
            text = "\n".join(lines)
        else:
            text = ""
        self.panel.model_info.setText(text)
        self.panel.model_info.setVisible(bool(text))

    @Slot(object)
    def _on_model_loaded(self, active: ActiveModel | None) -> None:
        self._loading = None
        self.active_model = active
        combo = self.panel.backend_combo
        for i, choice in enumerate(self.backend_choices):
            running = (
                active is not None
                and choice.backend == active.backend
                and (choice.device or "") == active.device.split(":")[0]
            )
            combo.setItemText(i, ("● " if running else "") + choice.label)
        if active is None:
            self.panel.active_label.setText("No model running: the result shows the original.")
            self.view.set_result_label("No model")
            self.view.set_notice("No model running: the result shows the original")
        else:
            text = f"Running: {active.backend_label} · {active.precision} · {active.device}"
            if active.in_flight > 1:
                text += f" · {active.in_flight} frames at once"
            skipped = active.describe.split(" — ", 1)
            if len(skipped) == 2:
                text += f"\nAuto skipped: {skipped[1].removeprefix('skipped ')}"
            self.panel.active_label.setText(text)
            self.panel.active_label.setToolTip(active.describe)
            self.view.set_result_label(
                "Pass-through" if active.name == PASSTHROUGH else "Deblurred"
            )
            self.view.set_notice("")
            self._sync_model_selection(active.name)
            self.statusBar().showMessage(f"Running {active.title}", 4000)
        self.model_changed.emit(active)

    def _sync_model_selection(self, name: str) -> None:
        item = self._card_item(name)
        lst = self.panel.model_list
        if item is not None and lst.currentItem() is not item:
            lst.blockSignals(True)
            lst.setCurrentItem(item)
            lst.blockSignals(False)
            self._update_model_info(item.data(Qt.ItemDataRole.UserRole))

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self._loading = None
        active = self.active_model
        if active is not None:
            self._sync_model_selection(active.name)
            self._on_model_loaded(active)  # relabel what still runs
            message += f"\n\nStill running {active.title}."
        else:
            self.panel.active_label.setText("No model running: the result shows the original.")
            self.view.set_notice("No model: the result shows the original")
        self.show_error("Cannot load the model", message)

    @Slot(str)
    def _on_runtime_failed(self, message: str) -> None:
        self.show_error("The backend failed", message)

    # -- view --------------------------------------------------------------------------

    def set_view_mode(self, mode: ViewMode) -> None:
        """Switch the comparison mode (menus, buttons and the heat map follow)."""
        self.view.set_mode(mode)
        self.mode_actions[mode].setChecked(True)
        self.panel.mode_buttons[mode].setChecked(True)
        self._request_heatmap.emit(mode == ViewMode.HEATMAP)
        self.settings.view_mode = mode.value

    def _on_zoom_changed(self, scale: float) -> None:
        fit = " (fit)" if self.view.is_fit() else ""
        self.panel.zoom_label.setText(f"{scale * 100:.0f} %{fit}")
        # Resizing the window changes the scale many times a second: tell the worker once
        # it settles.
        self._prescale_timer.start()

    def _send_prescale(self) -> None:
        scale = self.view.prescale()
        if abs(scale - self._sent_prescale) > 1e-6:
            self._sent_prescale = scale
            self._request_display_scale.emit(scale)

    def _on_intensity(self, value: int) -> None:
        self._request_intensity.emit(value / 100.0)
        self.settings.intensity = value / 100.0

    def _nudge_intensity(self, delta: int) -> None:
        slider = self.panel.intensity_slider
        slider.setValue(min(100, max(0, slider.value() + delta)))

    def _set_full_screen(self, on: bool) -> None:
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        """Hold Space anywhere in the window (outside text fields) to see the original."""
        kind = event.type()
        if (
            kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.ShortcutOverride)
            and event.key() == Qt.Key.Key_Space
            and isinstance(obj, QWidget)
            and obj.window() is self
            and not isinstance(obj, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))
        ):
            if kind == QEvent.Type.ShortcutOverride:
                event.accept()  # keep Space from clicking a focused button
                return False
            if not event.isAutoRepeat():
                self.view.set_show_original(kind == QEvent.Type.KeyPress)
            return True
        return super().eventFilter(obj, event)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        """Leaving the window releases a held Space."""
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.view.set_show_original(False)
        super().changeEvent(event)

    # -- frames ------------------------------------------------------------------------

    @Slot()
    def _on_pair_ready(self) -> None:
        pair = self._worker.display.take()
        if pair is None or pair.captured.generation != self._generation:
            return
        t0 = time.perf_counter()
        original = display_qimage(pair.original_view)
        result = display_qimage(pair.result_view)
        heat = display_qimage(pair.heatmap_view) if pair.heatmap_view is not None else None
        h, w = pair.original.shape[:2]
        self.view.set_frames(
            original,
            result,
            heat,
            size=(w, h),
            keep=pair,
            token=pair,
            heat_gain=pair.heatmap_gain,
        )
        self.current_pair = pair
        if self.opened is not None and self.opened.seekable:
            self.playback.set_position(pair.captured.media_time)
        t1 = time.perf_counter()
        if self._pending is not None and not self._pending[0].refresh:
            self._unpainted += 1  # the previous pair was replaced before it was painted
        self._pending = (pair, t0, (t1 - t0) * 1000.0)

    @Slot(object, float, float)
    def _on_frame_painted(self, token: object, paint_ms: float, t_end: float) -> None:
        pending = self._pending
        if pending is None or pending[0] is not token:
            return
        self._pending = None
        pair, t_received, wrap_ms = pending
        if not pair.refresh:
            c = pair.captured
            self.stats.add(
                DisplaySample(
                    t_capture=c.t_capture,
                    t_infer_start=pair.t_infer_start,
                    t_infer_end=pair.t_infer_end,
                    t_received=t_received,
                    t_painted=t_end,
                    wrap_ms=wrap_ms,
                    paint_ms=paint_ms,
                    captured=c.serial,
                    processed=pair.processed,
                    dropped=c.dropped + pair.display_dropped + self._unpainted,
                )
            )
        self.pair_displayed.emit(pair)

    def stats_text(self, snap: StatsSnapshot | None = None) -> str:
        """The status bar's statistics line."""
        snap = snap or self.stats.snapshot()

        def fps(v: float | None) -> str:
            return f"{v:.1f}" if v is not None else "–"

        def ms(v: float | None) -> str:
            return f"{v:.0f} ms" if v is not None else "–"

        parts = [
            f"Capture {fps(snap.capture_fps)} fps",
            f"Inference {fps(snap.inference_fps)} fps ({ms(snap.inference_ms)})",
            f"Display {fps(snap.display_fps)} fps"
            + (f" ({snap.display_ms:.1f} ms)" if snap.display_ms is not None else ""),
            f"Latency {ms(snap.latency_ms)}",
            f"Dropped {snap.dropped}",
        ]
        active = self.active_model
        if active is not None:
            parts.append(f"{active.backend_label} {active.precision}")
            parts.append(active.name)
        else:
            parts.append("no model")
        if self.opened is not None:
            parts.append(f"{self.opened.source.width}×{self.opened.source.height}")
        return "  │  ".join(parts)

    def _update_stats(self) -> None:
        if self.opened is None:
            return
        self.stats_label.setText(self.stats_text())
        if self._recording:
            elapsed = time.monotonic() - self._record_started
            self.record_label.setText(f"● REC {format_time(elapsed)[:-2]}")

    # -- record, snapshot, process -----------------------------------------------------

    @property
    def recording(self) -> bool:
        """Whether a recording was started and not yet stopped."""
        return self._recording

    @Slot()
    def toggle_recording(self) -> None:
        """Start or stop recording."""
        if self._recording:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self, path: str | os.PathLike | None = None) -> Path | None:
        """Record the preview (deblurred or side by side, as chosen) from the next frame on.

        Args:
            path: the file (default: a dated name in the output folder).

        Returns:
            The file it will be written to, or ``None`` when it cannot start.
        """
        if self._recording:
            return None
        if self.opened is None:
            self.statusBar().showMessage("Open a source before recording", 4000)
            self._show_recording(False)
            return None
        mode = self.panel.record_mode_combo.currentData()
        if path is None:
            folder = self.settings.output_folder
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.show_error("Cannot record", f"Cannot create {folder}: {exc.strerror or exc}")
                self._show_recording(False)
                return None
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            path = folder / f"rtdeblur_{stamp}_{mode}.mp4"
        path = Path(path)
        self._recording = True
        self._record_started = time.monotonic()
        self._request_record.emit(RecordRequest(path, mode))
        self._show_recording(True)
        self.statusBar().showMessage(f"Recording to {path}", 4000)
        return path

    def stop_recording(self) -> None:
        """Stop recording; the file is finished in the worker and reported when done."""
        if not self._recording:
            return
        self._recording = False
        self._request_stop_record.emit()
        self._show_recording(False)
        self.statusBar().showMessage("Finishing the recording…")

    def _show_recording(self, on: bool) -> None:
        self.panel.set_recording(on)
        action = self.actions_by_id["record"]
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)
        self.record_label.setVisible(on)
        if on:
            self.record_label.setText("● REC 0:00")

    @Slot(object)
    def _on_recording_finished(self, result: RecordingResult) -> None:
        self.last_recording = result
        if self._recording and result.error is not None:
            self._recording = False
            self._show_recording(False)
        if result.error is not None:
            self.show_error("Recording failed", result.error)
        else:
            self.statusBar().showMessage(
                f"Saved the recording: {result.path} ({result.frames} frames)", 8000
            )
        self.recording_finished.emit(result)

    @Slot()
    def snapshot(self) -> None:
        """Save the pair on screen as PNGs: original, deblurred, and both side by side."""
        pair = self.current_pair
        if pair is None:
            self.statusBar().showMessage("Nothing to save yet", 4000)
            return
        folder = self.settings.output_folder
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        original, result = pair.original, pair.result

        def work() -> None:
            # PNG encoding takes tens of milliseconds: not in the GUI thread.
            try:
                folder.mkdir(parents=True, exist_ok=True)
                stem = folder / f"rtdeblur_{stamp}"
                paths = [
                    write_image(f"{stem}_original.png", original),
                    write_image(f"{stem}_deblurred.png", result),
                    write_image(f"{stem}_side_by_side.png", side_by_side(original, result)),
                ]
            except (SinkError, OSError) as exc:
                self._snapshot_done.emit(f"Cannot save the snapshot: {exc}")
            else:
                self._snapshot_done.emit(paths)

        thread = threading.Thread(target=work, name="snapshot")
        self._snapshot_threads = [t for t in self._snapshot_threads if t.is_alive()]
        self._snapshot_threads.append(thread)
        thread.start()

    @Slot(object)
    def _on_snapshot_done(self, outcome: object) -> None:
        if isinstance(outcome, str):
            self.show_error("Snapshot failed", outcome)
        else:
            names = ", ".join(p.name for p in outcome)
            self.statusBar().showMessage(f"Saved {names} in {outcome[0].parent}", 8000)
        self.snapshot_saved.emit(outcome)

    @Slot()
    def choose_output_folder(self) -> None:
        """Choose where recordings, snapshots and processed files go."""
        folder = QFileDialog.getExistingDirectory(
            self, "Output folder", os.fspath(self.settings.output_folder)
        )
        if folder:
            self.set_output_folder(folder)

    def set_output_folder(self, folder: str | os.PathLike) -> None:
        """Use ``folder`` for recordings, snapshots and processed files."""
        self.settings.output_folder = Path(folder)
        self._show_output_folder()

    def _show_output_folder(self) -> None:
        folder = self.settings.output_folder
        self.panel.output_label.setText(f"Saving to {folder}")
        self.panel.output_label.setToolTip(os.fspath(folder))

    def open_output_folder(self) -> None:
        """Show the output folder in the file manager."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.fspath(self.settings.output_folder)))

    @Slot()
    def open_process_dialog(self, paths: list[str] | None = None) -> ProcessDialog:
        """Show the Process files dialog (one at a time), optionally with paths queued."""
        dialog = self._process_dialog
        if dialog is None or (not dialog.isVisible() and not dialog.is_running()):
            active = self.active_model
            factory = None
            text = "No model loaded"
            if active is not None:
                request = active.request
                factory = lambda: build_selection(request)  # noqa: E731 - runs in its thread
                text = f"{active.title} (a second instance, loaded for the run)"
            dialog = ProcessDialog(factory, text, self.settings.output_folder, self)
            dialog.output_folder_changed.connect(self.set_output_folder)
            self._process_dialog = dialog
        if paths:
            dialog.add_paths(paths)
        dialog.show()
        dialog.raise_()
        return dialog

    # -- help, errors ------------------------------------------------------------------

    @Slot()
    def show_shortcuts(self) -> ShortcutsDialog:
        """Help → Keyboard shortcuts."""
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()
        return self._shortcuts_dialog

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About rtdeblur",
            f"<b>rtdeblur {__version__}</b><p>Real-time deblurring of webcam and video "
            "frames, compared with the original as you watch.</p>",
        )

    def show_error(self, title: str, message: str) -> None:
        """Report an error without blocking the window: a dialog and the status bar."""
        log.info("%s: %s", title, message)
        self.last_error = message
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)
        box = self._error_box
        if box is None:
            box = QMessageBox(self)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box = box
        box.setWindowTitle(title)
        box.setText(f"<b>{title}</b>")
        box.setInformativeText(message)
        box.show()
        box.raise_()
        self.error_shown.emit(message)

    @property
    def error_dialog(self) -> QMessageBox | None:
        """The error dialog, if one was shown."""
        return self._error_box

    # -- drag and drop -----------------------------------------------------------------

    def _dropped_paths(self, event: QDragEnterEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return [p for p in paths if is_media_path(p)]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        """Accept videos, images and folders."""
        if self._dropped_paths(event):
            event.acceptProposedAction()
            self.view.set_drop_highlight(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        """Remove the drop outline."""
        self.view.set_drop_highlight(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        """Open a dropped file; several go to the Process files queue."""
        self.view.set_drop_highlight(False)
        paths = self._dropped_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        if len(paths) == 1:
            self.open_path(paths[0])
        else:
            self.open_process_dialog(paths)

    # -- closing -----------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Stop every thread: capture, inference (finishing a recording), processing."""
        if not self._closed:
            self._closed = True
            self.save_settings()
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            self._stats_timer.stop()
            if self._process_dialog is not None:
                self._process_dialog.close()
            self._stop_capture()
            self.compare_panel.shutdown()
            self._recording = False
            self._request_shutdown.emit()
            self._worker_thread.quit()
            self._worker_thread.wait()
            for thread in self._snapshot_threads:
                thread.join()
            if self._error_box is not None:
                self._error_box.close()
        super().closeEvent(event)


def _training_line(training: dict | None) -> str:
    """One readable line about how a card's weights were trained."""
    if not training:
        return "Untrained weights: its card records no training."
    recipe = training.get("recipe") or "unknown recipe"
    variant = training.get("variant")
    steps = training.get("steps")
    data = training.get("data") or {}
    source = "synthetic blur" if data.get("type") == "synthetic" else "paired photos"
    parts = [f"Trained with {recipe}" + (f" ({variant})" if variant else "")]
    if steps:
        parts.append(f"{steps} steps")
    parts.append(f"on {source}")
    return ", ".join(parts) + "."
