"""Wrapping the engine's numpy frames into QImages without copying them."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def display_qimage(view: np.ndarray) -> QImage:
    """A QImage over a display frame from :func:`engine.pipeline.compose.to_display`.

    The pixels are not copied: keep ``view`` alive (and unchanged) as long as the image is
    used.

    Shape:
        - view: :math:`(H, W, 4)` uint8, C-contiguous
    """
    if view.dtype != np.uint8 or view.ndim != 3 or view.shape[2] != 4:
        raise ValueError(f"expected a uint8 (H, W, 4) display frame, got {view.dtype} {view.shape}")
    if not view.flags.c_contiguous:
        raise ValueError("display frames must be C-contiguous")
    h, w = view.shape[:2]
    return QImage(view.data, w, h, view.strides[0], QImage.Format.Format_RGB32)


def rgb_qimage(frame: np.ndarray) -> QImage:
    """A QImage over an RGB frame (no copy: keep ``frame`` alive while the image is used).

    Shape:
        - frame: :math:`(H, W, 3)` uint8, C-contiguous
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    if not frame.flags.c_contiguous:
        raise ValueError("frames must be C-contiguous")
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_RGB888)
