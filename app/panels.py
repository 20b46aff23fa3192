"""The main window's widgets around the comparison view: the side panel and the playback bar.

These classes only lay widgets out and expose them; the main window connects them to the
pipeline.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.comparison_view import ViewMode
from app.recording import RECORD_MODES


def format_time(seconds: float | None) -> str:
    """``63.25`` → ``1:03.2``; ``None`` → ``–:––``."""
    if seconds is None:
        return "–:––"
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{rest:04.1f}"
    return f"{minutes}:{rest:04.1f}"


def _small(label: QLabel) -> QLabel:
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class SidePanel(QWidget):
    """Model, backend, intensity, view and output controls.

    Attributes:
        model_list: one entry per model card (item data: the card).
        model_info: what the selected card says (architecture, size, training).
        model_message: shown when no model card is found.
        backend_combo: the backends this machine offers (item data: the choice key).
        precision_combo: the precisions the chosen backend can run.
        overlap_check: run frames side by side on a CPU backend (more fps, more delay).
        active_label: the backend actually running, and what ``auto`` skipped.
        intensity_slider, intensity_spin: blend of input and result, 0–100 %.
        mode_buttons: one checkable button per :class:`ViewMode`.
        fit_button, actual_button, zoom_label: zoom controls.
        record_mode_combo, record_button, snapshot_button: output controls.
        output_label, output_button, process_button: output folder and batch processing.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(10)

        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        self.model_list = QListWidget()
        self.model_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.model_list.setMaximumHeight(130)
        self.model_message = _small(QLabel())
        self.model_message.setStyleSheet("color: #d08a00;")
        self.model_message.hide()
        self.model_info = _small(QLabel())
        self.model_info.setStyleSheet("color: palette(mid);")
        model_layout.addWidget(self.model_list)
        model_layout.addWidget(self.model_message)
        model_layout.addWidget(self.model_info)

        backend_box = QGroupBox("Backend")
        backend_layout = QGridLayout(backend_box)
        self.backend_combo = QComboBox()
        self.precision_combo = QComboBox()
        self.overlap_check = QCheckBox("Overlap frames")
        self.overlap_check.setToolTip(
            "On the CPU, deblur two frames at once on two copies of the model: more frames "
            "per second, each shown about one frame later. Off: one frame at a time, the "
            "shortest delay."
        )
        self.active_label = _small(QLabel("No model running"))
        backend_layout.addWidget(QLabel("Run on:"), 0, 0)
        backend_layout.addWidget(self.backend_combo, 0, 1)
        backend_layout.addWidget(QLabel("Precision:"), 1, 0)
        backend_layout.addWidget(self.precision_combo, 1, 1)
        backend_layout.addWidget(self.overlap_check, 2, 0, 1, 2)
        backend_layout.addWidget(self.active_label, 3, 0, 1, 2)
        backend_layout.setColumnStretch(1, 1)

        intensity_box = QGroupBox("Intensity")
        intensity_layout = QHBoxLayout(intensity_box)
        self.intensity_slider = QSlider(Qt.Orientation.Horizontal)
        self.intensity_slider.setRange(0, 100)
        self.intensity_slider.setValue(100)
        self.intensity_slider.setToolTip("Blend of the original (0 %) and the deblurred (100 %)")
        self.intensity_spin = QSpinBox()
        self.intensity_spin.setRange(0, 100)
        self.intensity_spin.setSuffix(" %")
        self.intensity_spin.setValue(100)
        self.intensity_slider.valueChanged.connect(self.intensity_spin.setValue)
        self.intensity_spin.valueChanged.connect(self.intensity_slider.setValue)
        intensity_layout.addWidget(self.intensity_slider, 1)
        intensity_layout.addWidget(self.intensity_spin)

        view_box = QGroupBox("View")
        view_layout = QVBoxLayout(view_box)
        modes = QHBoxLayout()
        modes.setSpacing(2)
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[ViewMode, QToolButton] = {}
        for mode in ViewMode:
            button = QToolButton()
            button.setText(mode.label)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
            modes.addWidget(button)
        zoom = QHBoxLayout()
        self.fit_button = QPushButton("Fit")
        self.actual_button = QPushButton("1:1")
        self.zoom_label = QLabel("100 %")
        self.zoom_label.setMinimumWidth(56)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        zoom.addWidget(self.fit_button)
        zoom.addWidget(self.actual_button)
        zoom.addStretch(1)
        zoom.addWidget(QLabel("Zoom:"))
        zoom.addWidget(self.zoom_label)
        hint = _small(QLabel("Wheel: zoom · drag: pan · hold Space: original"))
        hint.setStyleSheet("color: palette(mid);")
        view_layout.addLayout(modes)
        view_layout.addLayout(zoom)
        view_layout.addWidget(hint)

        output_box = QGroupBox("Record and export")
        output_layout = QGridLayout(output_box)
        self.record_mode_combo = QComboBox()
        for key, text in RECORD_MODES.items():
            self.record_mode_combo.addItem(text, key)
        self.record_button = QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip(
            "Save the original, the deblurred frame and both side by side"
        )
        self.output_label = _small(QLabel())
        self.output_button = QPushButton("Output folder…")
        self.process_button = QPushButton("Process files…")
        output_layout.addWidget(QLabel("Record:"), 0, 0)
        output_layout.addWidget(self.record_mode_combo, 0, 1)
        output_layout.addWidget(self.record_button, 1, 0, 1, 2)
        output_layout.addWidget(self.snapshot_button, 2, 0, 1, 2)
        output_layout.addWidget(self.output_label, 3, 0, 1, 2)
        output_layout.addWidget(self.output_button, 4, 0)
        output_layout.addWidget(self.process_button, 4, 1)
        output_layout.setColumnStretch(1, 1)

        for box in (model_box, backend_box, intensity_box, view_box, output_box):
            layout.addWidget(box)
        layout.addStretch(1)
        self.setMinimumWidth(280)

    def fit_model_list(self) -> None:
        """Make the model list as tall as its entries (up to five rows, then it scrolls)."""
        lst = self.model_list
        rows = min(max(lst.count(), 2), 5)
        row = max(lst.sizeHintForRow(0), lst.fontMetrics().height() + 8)
        lst.setFixedHeight(rows * row + 2 * lst.frameWidth() + 6)

    def set_recording(self, recording: bool) -> None:
        """Show the record button as running or idle."""
        self.record_button.blockSignals(True)
        self.record_button.setChecked(recording)
        self.record_button.blockSignals(False)
        self.record_button.setText("■ Stop recording" if recording else "● Record")
        self.record_button.setStyleSheet(
            "QPushButton { background: #b3261e; color: white; font-weight: bold; }"
            if recording
            else ""
        )
        self.record_mode_combo.setEnabled(not recording)


class PlaybackBar(QWidget):
    """Play/pause, frame step, a seek bar with the time, and loop (files and image folders).

    Attributes:
        play_button, back_button, forward_button: transport.
        seek_slider: position in milliseconds.
        time_label: ``position / duration``.
        loop_button: play again from the start at the end.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.back_button = QToolButton()
        self.back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward))
        self.back_button.setToolTip("Previous frame (,)")
        self.play_button = QToolButton()
        self.play_button.setToolTip("Play / pause (K)")
        self.forward_button = QToolButton()
        self.forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward))
        self.forward_button.setToolTip("Next frame (.)")
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, 0)
        self.seek_slider.setSingleStep(100)
        self.seek_slider.setPageStep(5000)
        # Keyboard seeking goes through the window's shortcuts; the slider keeps the mouse.
        self.seek_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.time_label = QLabel(f"{format_time(0)} / {format_time(None)}")
        self.time_label.setMinimumWidth(120)
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.loop_button = QToolButton()
        self.loop_button.setText("Loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setToolTip("Play again from the start at the end")
        for button in (self.back_button, self.play_button, self.forward_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(button)
        layout.addWidget(self.seek_slider, 1)
        layout.addWidget(self.time_label)
        layout.addWidget(self.loop_button)
        self.set_playing(False)

    def set_playing(self, playing: bool) -> None:
        """Show the play or the pause symbol."""
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))

    def set_duration(self, seconds: float | None) -> None:
        """Set the seek bar's range."""
        self.duration = seconds
        self.seek_slider.setRange(0, round((seconds or 0.0) * 1000))

    def set_position(self, seconds: float) -> None:
        """Move the seek bar (unless the user holds it) and update the time."""
        if not self.seek_slider.isSliderDown():
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(round(seconds * 1000))
            self.seek_slider.blockSignals(False)
        self.time_label.setText(
            f"{format_time(seconds)} / {format_time(getattr(self, 'duration', None))}"
        )
