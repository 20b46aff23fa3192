"""sRGB ↔ linear light with the exact IEC 61966-2-1 transfer functions.

Blur is a sum of light: every synthesiser here averages or convolves in linear light and only
then encodes back to sRGB. Averaging gamma-encoded values instead darkens bright streaks and
shifts the colour of blurred edges, which a network would then learn to reproduce.
"""

from __future__ import annotations

import cv2
import numpy as np

# IEC 61966-2-1 constants. The decode threshold 0.04045 and the encode threshold 0.0031308 are the
# two sides of the same break point (0.04045 / 12.92 ≈ 0.0031308).
_DECODE_THRESHOLD = 0.04045
_ENCODE_THRESHOLD = 0.0031308
_LINEAR_SLOPE = 12.92
_A = 0.055
_GAMMA = 2.4


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """Decode sRGB values in [0, 1] to linear light.

    Args:
        values: sRGB-encoded values, any shape, float.

    Returns:
        Linear-light values of the same shape (float32 unless the input is float64).
    """
    x = np.asarray(values)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    low = x / _LINEAR_SLOPE
    high = np.power((np.maximum(x, _DECODE_THRESHOLD) + _A) / (1.0 + _A), _GAMMA)
    return np.where(x <= _DECODE_THRESHOLD, low, high).astype(x.dtype, copy=False)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB values; the input is clipped to [0, 1] first.

    Args:
        values: linear-light values, any shape, float.

    Returns:
        sRGB-encoded values in [0, 1], same shape (float32 unless the input is float64).
    """
    x = np.asarray(values)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    x = np.clip(x, 0.0, 1.0)
    low = x * _LINEAR_SLOPE
    high = (1.0 + _A) * np.power(np.maximum(x, _ENCODE_THRESHOLD), 1.0 / _GAMMA) - _A
    return np.where(x <= _ENCODE_THRESHOLD, low, high).astype(x.dtype, copy=False)


# Exact decode of every 8-bit code, computed once in float64: a table lookup gives the same values
# as the power function, and OpenCV's LUT is another ~7x faster than NumPy indexing.
_UINT8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def srgb_uint8_to_linear(image: np.ndarray) -> np.ndarray:
    """Decode an 8-bit sRGB image to float32 linear light.

    Args:
        image: uint8 array, any shape (typically ``(H, W, 3)`` RGB).

    Returns:
        float32 array of the same shape with values in [0, 1].
    """
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] <= 4:
        return cv2.LUT(np.ascontiguousarray(image), _UINT8_TO_LINEAR)
    return _UINT8_TO_LINEAR[image]


def linear_to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Encode linear light to 8-bit sRGB (clipped to [0, 1], rounded to nearest).

    Decoding an 8-bit image and encoding it again returns the same codes exactly.

    Args:
        linear: float array, any shape.

    Returns:
        uint8 array of the same shape.
    """
    encoded = linear_to_srgb(linear)
    encoded *= 255.0
    np.rint(encoded, out=encoded)
    return encoded.astype(np.uint8)
