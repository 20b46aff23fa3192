"""Fixtures for the app tests: one exported model per session, small clips, windows that use a
temporary settings file (never the user's), and helpers to read what the view painted."""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.video import VideoSink

MODEL = "fpn_mobilenet_dsc"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models folder holding one random-weight export of the default model (with its card)."""
    pytest.importorskip("torch")
    from engine.models.export import export_registered

    folder = tmp_path_factory.mktemp("models")
    export_registered(MODEL, folder / f"{MODEL}.onnx")
    return folder


@pytest.fixture(scope="session")
def empty_models_dir(tmp_path_factory) -> Path:
    """A models folder without any card."""
    return tmp_path_factory.mktemp("no_models")


def pattern_frame(index: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A textured RGB frame that changes with ``index`` (edges, so models change it)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack(
        [
            (x * 7 + index * 11) % 256,
            (y * 5 + ((x // 8 + y // 8) % 2) * 120) % 256,
            ((x + y) * 3 + index * 5) % 256,
        ],
        axis=-1,
    ).astype(np.uint8)
    side = min(height, width) // 3
    top, left = (index * 3) % (height - side), (index * 5) % (width - side)
    image[top : top + side, left : left + side] = (240, 40, 30)
    return np.ascontiguousarray(image)


def write_clip(path: Path, frames: int, fps: int = 10, size: tuple[int, int] = (128, 96)) -> Path:
    """An H.264 clip written with the engine's sink."""
    w, h = size
    with VideoSink(path, w, h, codec="h264", frame_rate=fps, time_base=Fraction(1, fps)) as sink:
        for i in range(frames):
            sink.write(pattern_frame(i, h, w), i)
    return path


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory) -> Path:
    """12 frames at 10 fps, 128×96."""
    return write_clip(tmp_path_factory.mktemp("clips") / "small.mp4", 12)


@pytest.fixture(scope="session")
def fast_clip(tmp_path_factory) -> Path:
    """40 frames at 50 fps (for the frame-dropping tests)."""
    return write_clip(tmp_path_factory.mktemp("clips") / "fast.mp4", 40, fps=50)


@pytest.fixture
def broken_file(tmp_path) -> Path:
    """A file named like a video that holds garbage."""
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def settings_path(tmp_path, monkeypatch) -> Path:
    """A temporary settings file; RTDEBLUR_SETTINGS points there too, so nothing in a test can
    reach the user's settings."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv("RTDEBLUR_SETTINGS", os.fspath(path))
    return path


class PairLog(list):
    """Every pair a window painted, in order."""

    def wait(self, qtbot, predicate: Callable = lambda pair: True, timeout: int = 30000):
        """Wait until a painted pair satisfies ``predicate`` and return the latest such pair."""
        qtbot.waitUntil(lambda: any(predicate(p) for p in self), timeout=timeout)
        return next(p for p in reversed(self) if predicate(p))


@pytest.fixture
def make_window(qtbot, settings_path, models_dir):
    """Build main windows (closed at the end of the test) with a pair log attached."""
    from app.main_window import MainWindow

    def factory(size=(1100, 700), **kwargs):
        kwargs.setdefault("models_dir", models_dir)
        kwargs.setdefault("settings", settings_path)
        kwargs.setdefault("camera_lister", lambda: [])
        window = MainWindow(**kwargs)
        window.pairs = PairLog()
        window.pair_displayed.connect(window.pairs.append)
        qtbot.addWidget(window)
        if size is not None:  # None: keep the geometry restored from the settings
            window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        return window

    return factory


def wait_model(qtbot, window, name: str = MODEL, timeout: int = 30000) -> None:
    """Wait until ``name`` runs in the window."""
    qtbot.waitUntil(
        lambda: window.active_model is not None and window.active_model.name == name,
        timeout=timeout,
    )


def grab(widget) -> np.ndarray:
    """What a widget paints, as an RGB array."""
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def crop(image: np.ndarray, rect) -> np.ndarray:
    """The part of a grabbed image inside a QRectF (shrunk by 2 px against edge blending)."""
    r = rect.toAlignedRect().adjusted(2, 2, -2, -2)
    return image[r.top() : r.bottom() + 1, r.left() : r.right() + 1]
