"""Degradations of the blurred input only: slight defocus, sensor noise, JPEG re-compression.

Order follows the camera: optics (defocus) and motion act on light, the sensor adds
Poisson-Gaussian noise to that light, the camera encodes to 8-bit sRGB, and a codec may
compress the result. The sharp target never sees any of these: the network should learn to
remove them, not to reproduce them.

This is the part of DeblurGAN-v2's input corruptions that is a physical degradation (its JPEG,
blur and noise-like corruptions). Colour corruptions, which upstream also applies to the input
only, live in :mod:`training.data.augment` and are applied to both images; cutout and sharpening
are left out (neither occurs in camera footage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np

from training.data.colour import linear_to_srgb_uint8


def _checked_pair(value: Sequence[float], name: str, low_bound: float) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not low_bound <= low <= high:
        raise ValueError(f"{name} must satisfy {low_bound} ≤ low ≤ high, got {value!r}")
    return low, high


@dataclass(frozen=True)
class DegradationConfig:
    """What degrades the blurred input, and how often.

    Noise levels are in linear light, for values in [0, 1]: the variance at intensity ``x`` is
    ``shot_noise · x + read_noise²`` (Foi et al., "Practical Poissonian-Gaussian noise modeling
    and fitting for single-image raw data", 2008). Both are drawn log-uniformly from their ranges.

    Attributes:
        noise_probability: chance of adding sensor noise.
        shot_noise: range of the Poisson scale (one photon's worth of linear intensity).
        read_noise: range of the read-noise standard deviation.
        exact_poisson: draw true Poisson counts (about 4× slower than the default
            heteroscedastic Gaussian, which differs only below ~10 photons per pixel).
        defocus_probability: chance of a slight Gaussian (defocus-like) blur before the noise.
        defocus_sigma: range of its standard deviation in pixels.
        jpeg_probability: chance of a JPEG round trip after 8-bit encoding.
        jpeg_quality: range of the JPEG quality (integers, both ends included).
    """

    noise_probability: float = 0.9
    shot_noise: tuple[float, float] = (1e-4, 2e-3)
    read_noise: tuple[float, float] = (2e-4, 2e-3)
    exact_poisson: bool = False
    defocus_probability: float = 0.1
    defocus_sigma: tuple[float, float] = (0.3, 1.0)
    jpeg_probability: float = 0.3
    jpeg_quality: tuple[float, float] = (60, 95)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("probability"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{f.name} must be in [0, 1], got {value!r}")
            elif f.name == "jpeg_quality":
                low, high = _checked_pair(value, f.name, 1.0)
                if high > 100:
                    raise ValueError(f"jpeg_quality must lie in [1, 100], got {value!r}")
                object.__setattr__(self, f.name, (int(low), int(high)))
            elif f.name != "exact_poisson":
                # Log-uniform draws need positive bounds.
                bound = 1e-12 if f.name in ("shot_noise", "read_noise") else 0.0
                object.__setattr__(self, f.name, _checked_pair(value, f.name, bound))


@dataclass(frozen=True)
class Degradation:
    """One drawn set of degradations (None where a step is skipped); JSON-friendly."""

    defocus_sigma: float | None = None
    shot_noise: float | None = None
    read_noise: float | None = None
    jpeg_quality: int | None = None


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def sample_degradation(rng: np.random.Generator, config: DegradationConfig | None) -> Degradation:
    """Draw the degradations for one item (always the same number of draws from ``rng``)."""
    if config is None:
        return Degradation()
    # Draw every value whether or not it is used, so that changing one probability does not
    # reshuffle the other draws of the same seed.
    u = rng.random(3)
    sigma = float(rng.uniform(*config.defocus_sigma))
    shot = _log_uniform(rng, config.shot_noise)
    read = _log_uniform(rng, config.read_noise)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    noisy = u[1] < config.noise_probability
    return Degradation(
        defocus_sigma=sigma if u[0] < config.defocus_probability else None,
        shot_noise=shot if noisy else None,
        read_noise=read if noisy else None,
        jpeg_quality=quality if u[2] < config.jpeg_probability else None,
    )


def add_poisson_gaussian_noise(
    linear: np.ndarray,
    rng: np.random.Generator,
    shot_noise: float,
    read_noise: float,
    *,
    exact_poisson: bool = False,
) -> np.ndarray:
    """Signal-dependent shot noise plus signal-independent read noise, in linear light.

    Args:
        linear: float32 image in linear light, values ≥ 0.
        rng: the random generator.
        shot_noise: linear intensity of one photon (variance ``shot_noise · x``).
        read_noise: standard deviation of the read noise.
        exact_poisson: draw Poisson counts instead of the heteroscedastic Gaussian.

    Returns:
        The noisy image, float32, clipped below at 0 (a sensor's black level).
    """
    x = np.maximum(np.asarray(linear, np.float32), 0.0)
    if exact_poisson:
        noisy = rng.poisson(x / shot_noise).astype(np.float32) * np.float32(shot_noise)
        noisy += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(read_noise)
    else:
        std = np.sqrt(x * np.float32(shot_noise) + np.float32(read_noise**2))
        noisy = x + std * rng.standard_normal(x.shape, dtype=np.float32)
    return np.maximum(noisy, 0.0, out=noisy)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an 8-bit RGB image as JPEG (4:2:0, as cameras and codecs do) and decode it.

    Args:
        image: uint8 RGB image.
        quality: JPEG quality 1…100.

    Returns:
        The decoded uint8 RGB image.

    Shape:
        - image: :math:`(H, W, 3)`
    """
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # JPEG's YCbCr weights R and B differently
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def degrade_to_uint8(
    linear: np.ndarray,
    rng: np.random.Generator,
    degradation: Degradation,
    *,
    exact_poisson: bool = False,
) -> np.ndarray:
    """Apply drawn degradations to a blurred linear image and encode it to 8-bit sRGB.

    Args:
        linear: float32 blurred image in linear light.
        rng: the random generator for the noise.
        degradation: what to apply (see :func:`sample_degradation`).
        exact_poisson: see :func:`add_poisson_gaussian_noise`.

    Returns:
        The degraded uint8 RGB image.

    Shape:
        - linear: :math:`(H, W, 3)`; output: :math:`(H, W, 3)` uint8
    """
    x = linear
    if degradation.defocus_sigma is not None:
        x = cv2.GaussianBlur(
            x, (0, 0), degradation.defocus_sigma, borderType=cv2.BORDER_REFLECT_101
        )
    if degradation.shot_noise is not None and degradation.read_noise is not None:
        x = add_poisson_gaussian_noise(
            x, rng, degradation.shot_noise, degradation.read_noise, exact_poisson=exact_poisson
        )
    out = linear_to_srgb_uint8(x)
    if degradation.jpeg_quality is not None:
        out = jpeg_round_trip(out, degradation.jpeg_quality)
    return out
