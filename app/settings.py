"""The app's persistent settings (QSettings): last source, model, backend, view, output folder.

Settings live in the platform's usual place (``~/.config/rtdeblur/rtdeblur.conf`` on Linux)
unless a file is named, by the constructor or by ``RTDEBLUR_SETTINGS`` (an INI file): tests,
benchmarks and screenshots use one so they never read or change a user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

SETTINGS_ENV = "RTDEBLUR_SETTINGS"
ORGANISATION = "rtdeblur"
APPLICATION = "rtdeblur"


def default_output_folder() -> Path:
    """``~/Videos/rtdeblur`` (the platform's movies folder), or ``~/rtdeblur`` without one."""
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    base = Path(movies) if movies else Path.home()
    return base / "rtdeblur"


class AppSettings:
    """Typed access to the values the main window keeps between runs.

    Args:
        path: an INI file to keep the settings in; ``None`` uses ``$RTDEBLUR_SETTINGS`` if
            set, else the platform's native store.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        path = path if path is not None else os.environ.get(SETTINGS_ENV) or None
        if path is not None:
            self.qsettings = QSettings(os.fspath(path), QSettings.Format.IniFormat)
        else:
            self.qsettings = QSettings(ORGANISATION, APPLICATION)

    @property
    def file_name(self) -> str:
        """Where the settings are stored."""
        return self.qsettings.fileName()

    def _str(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return value if isinstance(value, str) else default

    def _float(self, key: str, default: float) -> float:
        try:
            return float(self.qsettings.value(key, default))
        except (TypeError, ValueError):
            return default

    def _bool(self, key: str, default: bool) -> bool:
        value = self.qsettings.value(key, default)
        if isinstance(value, str):  # INI files hand booleans back as text
            return value.lower() in ("true", "1", "yes")
        return bool(value)

    # -- values ----------------------------------------------------------------------------

    @property
    def last_source(self) -> str:
        """``file:PATH``, ``camera:DEVICE`` or ``""``."""
        return self._str("source/last")

    @last_source.setter
    def last_source(self, value: str) -> None:
        self.qsettings.setValue("source/last", value)

    @property
    def model(self) -> str:
        """Name of the last model used (a card name)."""
        return self._str("model/name")

    @model.setter
    def model(self, value: str) -> None:
        self.qsettings.setValue("model/name", value)

    @property
    def backend(self) -> str:
        """Key of the last backend choice (see :mod:`app.backend_choices`)."""
        return self._str("model/backend", "auto")

    @backend.setter
    def backend(self, value: str) -> None:
        self.qsettings.setValue("model/backend", value)

    @property
    def precision(self) -> str:
        """Last precision chosen (``""``: the backend's default)."""
        return self._str("model/precision")

    @precision.setter
    def precision(self, value: str) -> None:
        self.qsettings.setValue("model/precision", value)

    @property
    def overlap(self) -> bool:
        """Whether a CPU backend runs two frames at once (more fps, a frame more delay)."""
        return self._bool("model/overlap", True)

    @overlap.setter
    def overlap(self, value: bool) -> None:
        self.qsettings.setValue("model/overlap", bool(value))

    @property
    def intensity(self) -> float:
        """Blend of input and result, 0–1."""
        return min(max(self._float("view/intensity", 1.0), 0.0), 1.0)

    @intensity.setter
    def intensity(self, value: float) -> None:
        self.qsettings.setValue("view/intensity", float(value))

    @property
    def view_mode(self) -> str:
        """Comparison view mode name."""
        return self._str("view/mode", "split")

    @view_mode.setter
    def view_mode(self, value: str) -> None:
        self.qsettings.setValue("view/mode", value)

    @property
    def split(self) -> float:
        """Divider position in split mode, as a fraction of the view's width."""
        return min(max(self._float("view/split", 0.5), 0.0), 1.0)

    @split.setter
    def split(self, value: float) -> None:
        self.qsettings.setValue("view/split", float(value))

    @property
    def loop(self) -> bool:
        """Whether file playback starts again at the end."""
        return self._bool("playback/loop", True)

    @loop.setter
    def loop(self, value: bool) -> None:
        self.qsettings.setValue("playback/loop", bool(value))

    @property
    def output_folder(self) -> Path:
        """Where recordings, snapshots and processed files go."""
        text = self._str("output/folder")
        return Path(text) if text else default_output_folder()

    @output_folder.setter
    def output_folder(self, value: str | os.PathLike) -> None:
        self.qsettings.setValue("output/folder", os.fspath(value))

    @property
    def record_mode(self) -> str:
        """``deblurred`` or ``side_by_side``."""
        value = self._str("output/record_mode", "deblurred")
        return value if value in ("deblurred", "side_by_side") else "deblurred"

    @record_mode.setter
    def record_mode(self, value: str) -> None:
        self.qsettings.setValue("output/record_mode", value)

    @property
    def geometry(self) -> QByteArray | None:
        """The main window's saved geometry."""
        value = self.qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        """The main window's saved dock and tool-bar layout."""
        value = self.qsettings.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.qsettings.setValue("window/state", value)

    def sync(self) -> None:
        """Write pending changes to storage now."""
        self.qsettings.sync()
