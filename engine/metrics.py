"""Image quality metrics on uint8 (or float) RGB frames, in NumPy and OpenCV only.

PSNR and SSIM follow scikit-image's definitions and defaults (SSIM: 7×7 uniform window,
K1 = 0.01, K2 = 0.03, sample covariance, symmetric border, the mean over the image without a
3-pixel border, averaged over channels), so values match ``skimage.metrics``.
"""

from __future__ import annotations

import cv2
import numpy as np


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error."""
    _check_pair(a, b)
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images).

    Args:
        a: reference image.
        b: test image of the same shape.
        data_range: the value range (255 for uint8).
    """
    err = mse(a, b)
    return float("inf") if err == 0 else float(10.0 * np.log10(data_range**2 / err))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, win_size: int = 7) -> float:
    """Structural similarity, as ``skimage.metrics.structural_similarity`` with its defaults.

    Args:
        a: reference image, (H, W) or (H, W, C).
        b: test image of the same shape.
        data_range: the value range (255 for uint8).
        win_size: odd side of the uniform window.

    Returns:
        Mean SSIM over the image (and channels).
    """
    _check_pair(a, b)
    if a.ndim == 3:
        return float(
            np.mean([ssim(a[..., c], b[..., c], data_range, win_size) for c in range(a.shape[2])])
        )
    if min(a.shape) < win_size:
        raise ValueError(f"images must be at least {win_size}×{win_size} for SSIM")
    x, y = a.astype(np.float64), b.astype(np.float64)
    n = win_size * win_size
    cov_norm = n / (n - 1.0)  # sample covariance, as skimage

    def mean(img: np.ndarray) -> np.ndarray:
        # scipy.ndimage.uniform_filter's "reflect" border is OpenCV's BORDER_REFLECT.
        return cv2.blur(img, (win_size, win_size), borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())
