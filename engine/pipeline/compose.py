"""Frame composition for previews, recordings and snapshots: blend, side by side, heat map.

The app never touches pixels itself; everything it shows or writes besides the network's own
output is composed here, on uint8 RGB frames (the engine's frame contract), by OpenCV kernels
that write into caller-owned output buffers. A caller that keeps its buffers between frames
allocates nothing per frame.

Display frames: Qt paints 32-bit ``0xffRRGGBB`` images (``QImage.Format_RGB32``) several times
faster than packed 24-bit RGB when it has to scale them, so :func:`to_display` converts a frame
to that layout (bytes B, G, R, 255 on little-endian machines) in the thread that produced it,
before it reaches the GUI thread.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

#: OpenCV colour map used for difference heat maps: perceptually uniform, black where the two
#: frames agree, so unchanged areas stay dark and changes glow.
HEATMAP_COLORMAP = cv2.COLORMAP_INFERNO
DEFAULT_HEATMAP_GAIN = 4.0


def _check_frame(name: str, frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 numpy array, got {getattr(frame, 'dtype', None)}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {frame.shape}")


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    _check_frame("first frame", a)
    _check_frame("second frame", b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} and {b.shape}")


def _output(out: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if out is None:
        return np.empty(shape, np.uint8)
    if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous uint8 array of shape {shape}, "
            f"got {out.dtype} {out.shape}"
        )
    return out


def blend(
    original: np.ndarray, result: np.ndarray, alpha: float, out: np.ndarray | None = None
) -> np.ndarray:
    """Mix the input and the deblurred frame: ``(1 - alpha) * original + alpha * result``.

    This is the app's intensity control: 0 shows the input, 1 the network's output.

    Args:
        original: the input frame.
        result: the deblurred frame.
        alpha: weight of ``result``, clipped to [0, 1].
        out: output buffer (allocated when ``None``); may be ``result`` itself.

    Returns:
        ``out``, rounded to the nearest integer.

    Shape:
        - original, result, out: :math:`(H, W, 3)` uint8
    """
    _check_pair(original, result)
    out = _output(out, original.shape, "out")
    alpha = min(max(float(alpha), 0.0), 1.0)
    if alpha >= 1.0:
        if out is not result:
            np.copyto(out, result)
    elif alpha <= 0.0:
        if out is not original:
            np.copyto(out, original)
    else:
        cv2.addWeighted(original, 1.0 - alpha, result, alpha, 0.0, dst=out)
    return out


def side_by_side(left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Put two frames of the same size next to each other (what side-by-side recordings hold).

    Args:
        left: shown on the left (the original).
        right: shown on the right (the deblurred frame).
        out: output buffer of twice the width (allocated when ``None``).

    Returns:
        ``out``.

    Shape:
        - left, right: :math:`(H, W, 3)` uint8
        - out: :math:`(H, 2W, 3)` uint8
    """
    _check_pair(left, right)
    h, w, _ = left.shape
    out = _output(out, (h, 2 * w, 3), "out")
    out[:, :w] = left
    out[:, w:] = right
    return out


class HeatmapScratch:
    """Intermediate buffers for :func:`difference_heatmap`, kept between frames of one size."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.diff = self.level = np.empty(0, np.uint8)
        self.planes: list[np.ndarray] = []

    def ensure(self, shape: tuple[int, ...]) -> None:
        """Allocate for frames of ``shape`` unless already done."""
        if shape != self.shape:
            h, w, _ = shape
            self.diff = np.empty(shape, np.uint8)
            self.level = np.empty((h, w), np.uint8)
            self.planes = [np.empty((h, w), np.uint8) for _ in range(3)]
            self.shape = shape


def _rgb_colormap() -> np.ndarray:
    # applyColorMap with a user table writes the table's channels as they are, so a table in
    # RGB order yields RGB output directly (no BGR→RGB pass per frame).
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], HEATMAP_COLORMAP)
    return np.ascontiguousarray(bgr[..., ::-1].reshape(256, 1, 3))


_RGB_COLORMAP = _rgb_colormap()


def difference_heatmap(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray | None = None,
    gain: float = DEFAULT_HEATMAP_GAIN,
    scratch: HeatmapScratch | None = None,
) -> np.ndarray:
    """Where and how much two frames differ, as a colour heat map.

    Per pixel the largest absolute difference over the three channels is multiplied by
    ``gain`` (saturating at 255) and coloured with :data:`HEATMAP_COLORMAP`: black where the
    frames agree, through purple and orange to pale yellow at ``255 / gain`` levels or more.

    Args:
        a: first frame (the original).
        b: second frame (the deblurred one).
        out: RGB output buffer (allocated when ``None``).
        gain: how many times the difference is amplified (> 0).
        scratch: intermediate buffers; pass one kept between calls to allocate nothing per
            frame.

    Returns:
        ``out``, an RGB image.

    Shape:
        - a, b, out: :math:`(H, W, 3)` uint8
    """
    _check_pair(a, b)
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain}")
    out = _output(out, a.shape, "out")
    scratch = scratch or HeatmapScratch()
    scratch.ensure(a.shape)
    cv2.absdiff(a, b, dst=scratch.diff)
    # Channel planes then two element-wise maxima: numpy's max over the last axis is an order
    # of magnitude slower on uint8 images.
    cv2.split(scratch.diff, scratch.planes)
    p0, p1, p2 = scratch.planes
    cv2.max(p0, p1, dst=scratch.level)
    cv2.max(scratch.level, p2, dst=scratch.level)
    cv2.convertScaleAbs(scratch.level, dst=scratch.level, alpha=float(gain))  # saturates
    cv2.applyColorMap(scratch.level, _RGB_COLORMAP, dst=out)
    return out


def heatmap_legend(length: int = 256) -> np.ndarray:
    """The heat map's colour bar: from no difference (left) to ``255 / gain`` levels or more.

    Returns:
        An RGB image of shape ``(1, length, 3)``.
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    ramp = np.linspace(0, 255, length).round().astype(np.uint8)[None]
    return np.ascontiguousarray(cv2.applyColorMap(ramp, _RGB_COLORMAP))


def display_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(width, height)`` of a frame shown at ``scale`` (at least one pixel each way)."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_display(
    frame: np.ndarray, out: np.ndarray | None = None, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Convert an RGB frame to the 32-bit layout Qt paints fastest (``QImage.Format_RGB32``),
    optionally resized to the size it will be shown at.

    ``Format_RGB32`` is a native-endian ``0xffRRGGBB`` word per pixel, so the bytes are
    B, G, R, 255 on little-endian machines and 255, R, G, B on big-endian ones.

    Resizing here, in the thread that produced the frame, lets the GUI thread copy pixels
    instead of resampling them while it paints. Reductions to less than half go through
    Gaussian pyramid halvings first, so fine detail averages out instead of aliasing;
    enlargements are bilinear.

    Args:
        frame: an RGB frame.
        out: an output buffer of the result's shape (allocated when ``None``).
        size: ``(width, height)`` to resize to (``None``: the frame's own size).

    Returns:
        ``out``.

    Shape:
        - frame: :math:`(H, W, 3)` uint8
        - out: :math:`(h, w, 4)` uint8, ``(w, h) = size`` or ``(W, H)``
    """
    _check_frame("frame", frame)
    h, w, _ = frame.shape
    tw, th = size if size is not None else (w, h)
    if tw < 1 or th < 1:
        raise ValueError(f"size must be at least 1x1, got {tw}x{th}")
    out = _output(out, (th, tw, 4), "out")
    src = frame
    while src.shape[1] >= 2 * tw and src.shape[0] >= 2 * th:
        src = cv2.pyrDown(src)
    if (src.shape[1], src.shape[0]) != (tw, th):
        src = cv2.resize(src, (tw, th), interpolation=cv2.INTER_LINEAR)
    if sys.byteorder == "little":
        cv2.cvtColor(src, cv2.COLOR_RGB2BGRA, dst=out)
    else:  # pragma: no cover - no big-endian machine to test on
        out[..., 0] = 255
        out[..., 1:] = src
    return out
