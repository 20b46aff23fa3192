"""Augmentations applied identically to the blurred and the sharp image of a pair.

Joint crops (reflection-padded where a photo is smaller than the crop), the eight flips and
90° rotations, and a photometric jitter (brightness, contrast, gamma, hue, saturation, rarely
grayscale). The jitter is drawn once per pair and applied to every source image the pair is
synthesised from, so it changes the scene, never the relation between input and target.

Upstream DeblurGAN-v2 applies its colour corruptions (gamma, HSV and RGB shifts) to the blurred
input only, which teaches a deblurring network to alter colours as well; users then report
colour shifts in its outputs. We apply colour changes to both images and keep input-only
degradations (noise, JPEG, defocus) in :mod:`training.data.degrade`.

Every random choice of a dataset item comes from :func:`item_rng`, its own generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one dataset item: a function of (seed, epoch, index) only.

    Every item draws from its own stream, so an item is the same whichever DataLoader worker
    makes it, however many workers there are, and in whatever order they run.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


def crop_size(crop: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from a side or a pair, checked to be positive."""
    values = [crop] if np.isscalar(crop) else list(crop)  # type: ignore[arg-type]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"crop must be a positive int or (height, width), got {crop!r}")
    return int(values[0]), int(values[1])


def reflect_crop(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Crop a window that may extend beyond the image; outside pixels are mirrored.

    Mirroring is about the image's edge pixels (OpenCV's ``BORDER_REFLECT_101``, NumPy's
    ``reflect``), repeated as often as needed for windows much larger than the image.

    Args:
        image: the image to crop from.
        top: row of the window's first row (may be negative).
        left: column of the window's first column (may be negative).
        height: window height.
        width: window width.

    Returns:
        A C-contiguous copy of the window.

    Shape:
        - image: :math:`(H, W)` or :math:`(H, W, C)`
        - output: :math:`(height, width)` or :math:`(height, width, C)`
    """
    h, w = image.shape[:2]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return np.ascontiguousarray(image[top : top + height, left : left + width]).copy()
    rows = _reflect_indices(np.arange(top, top + height), h)
    cols = _reflect_indices(np.arange(left, left + width), w)
    return np.ascontiguousarray(image[rows][:, cols])


def _reflect_indices(index: np.ndarray, size: int) -> np.ndarray:
    """Indices mirrored into ``[0, size)`` about the edge pixels (``BORDER_REFLECT_101``)."""
    if size == 1:  # nothing to mirror around
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index >= size, period - index, index)


def random_crop_origin(
    rng: np.random.Generator, height: int, width: int, crop: tuple[int, int], margin: int = 0
) -> tuple[int, int]:
    """A random top-left corner for a ``crop`` window, keeping a margin inside when possible.

    Where the image is at least ``crop + 2 × margin`` the whole margin-padded window lies inside
    it (so blur near the crop's border sees real pixels); where it is smaller, the crop itself
    stays inside; where even the crop does not fit, the image lies inside the window and
    :func:`reflect_crop` mirrors the rest.

    Args:
        rng: the random generator.
        height: image height.
        width: image width.
        crop: window size ``(crop_height, crop_width)``.
        margin: extra pixels wanted on every side of the window.

    Returns:
        ``(top, left)`` of the crop window (without the margin).
    """

    def pick(size: int, extent: int) -> int:
        if size >= extent + 2 * margin:
            return int(rng.integers(margin, size - extent - margin + 1))
        if size >= extent:
            return int(rng.integers(0, size - extent + 1))
        return int(rng.integers(size - extent, 1))

    return pick(height, crop[0]), pick(width, crop[1])


def dihedral(image: np.ndarray, code: int) -> np.ndarray:
    """One of the eight flips/90° rotations: ``code % 4`` quarter turns, then a left-right flip
    when ``code >= 4``.

    Args:
        image: the image.
        code: 0…7; 0 is the identity.

    Returns:
        The transformed image, C-contiguous.

    Shape:
        - image: :math:`(H, W, ...)`; output :math:`(H, W, ...)` or :math:`(W, H, ...)`
    """
    out = np.rot90(image, code % 4)
    if code >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def random_dihedral_code(
    rng: np.random.Generator, *, square: bool = True, flips: bool = True, rotations: bool = True
) -> int:
    """A random code for :func:`dihedral`.

    Args:
        rng: the random generator.
        square: whether the crop is square; a non-square one only gets half turns, so every
            item of a batch keeps the same shape.
        flips: allow the left-right flip (with half turns this also gives the up-down flip).
        rotations: allow rotations.

    Returns:
        The code, 0…7.
    """
    turns = (4 if square else 2) if rotations else 1
    turn = int(rng.integers(turns)) * (1 if square else 2)
    flip = bool(rng.integers(2)) if flips else False
    return turn + (4 if flip else 0)


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """A ``(low, high)`` tuple from YAML-ish input (a list or a tuple), checked."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if low > high:
        raise ValueError(f"{name} must have low ≤ high, got {value!r}")
    return low, high


@dataclass(frozen=True)
class ColourJitterConfig:
    """Ranges of the photometric jitter; every field's identity value lies inside its range.

    Attributes:
        probability: chance that a pair is jittered at all.
        brightness: multiplicative gain range on sRGB values.
        contrast: contrast gain range around mid-grey (a fixed pivot, so every source of a pair
            gets exactly the same colour mapping).
        gamma: exponent range applied to sRGB values.
        hue_degrees: hue shift range in degrees.
        saturation: saturation gain range.
        grayscale_probability: chance of a grayscale copy in three channels (given jitter).
    """

    probability: float = 0.5
    brightness: tuple[float, float] = (0.9, 1.1)
    contrast: tuple[float, float] = (0.9, 1.1)
    gamma: tuple[float, float] = (0.85, 1.15)
    hue_degrees: tuple[float, float] = (-5.0, 5.0)
    saturation: tuple[float, float] = (0.85, 1.15)
    grayscale_probability: float = 0.02

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("probability"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{f.name} must be in [0, 1], got {value!r}")
            else:
                object.__setattr__(self, f.name, _pair(value, f.name))


@dataclass(frozen=True)
class ColourJitter:
    """One drawn photometric jitter; apply it with :func:`apply_colour_jitter`."""

    brightness: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    hue_degrees: float = 0.0
    saturation: float = 1.0
    grayscale: bool = False


def sample_colour_jitter(
    rng: np.random.Generator, config: ColourJitterConfig | None
) -> ColourJitter | None:
    """Draw one jitter from ``config``; None when the pair is not jittered (or no config)."""
    if config is None or rng.random() >= config.probability:
        return None
    return ColourJitter(
        brightness=float(rng.uniform(*config.brightness)),
        contrast=float(rng.uniform(*config.contrast)),
        gamma=float(rng.uniform(*config.gamma)),
        hue_degrees=float(rng.uniform(*config.hue_degrees)),
        saturation=float(rng.uniform(*config.saturation)),
        grayscale=bool(rng.random() < config.grayscale_probability),
    )


def apply_colour_jitter(image: np.ndarray, jitter: ColourJitter | None) -> np.ndarray:
    """Apply a drawn jitter to an 8-bit RGB image (a per-pixel colour mapping).

    Args:
        image: uint8 RGB image.
        jitter: the jitter, or None for the identity.

    Returns:
        uint8 RGB image of the same shape (the input itself when ``jitter`` is None).

    Shape:
        - image: :math:`(H, W, 3)`
    """
    if jitter is None:
        return image
    x = np.arange(256, dtype=np.float64) / 255.0
    y = (np.power(x, jitter.gamma) * jitter.brightness - 0.5) * jitter.contrast + 0.5
    lut = np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)
    out = cv2.LUT(np.ascontiguousarray(image), lut)
    if jitter.hue_degrees != 0.0 or jitter.saturation != 1.0:
        hsv = cv2.cvtColor(out.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0] + jitter.hue_degrees, 360.0)
        hsv[..., 1] = np.clip(hsv[..., 1] * jitter.saturation, 0.0, 1.0)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        out = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    if jitter.grayscale:
        grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = np.repeat(grey[..., None], 3, axis=2)
    return out
