"""Camera-shake point-spread functions: random 2-D trajectories rasterised into blur kernels.

A trajectory is the image-plane displacement of the camera during one exposure, sampled at equal
time steps. Its dynamics follow the random-motion model of Boracchi and Foi ("Modeling the
performance of image restoration from motion blur", 2012): a velocity that wanders by random
acceleration, a weak pull back towards the start (a hand holding a camera steady), and occasional
jerks that kick the velocity round, mostly into a rebound. The kernel is the time the path spends
over each pixel, splatted bilinearly from points 0.1 px apart, so it has sub-pixel accuracy and
sums to one.

Coordinates are ``(x, y)`` in pixels, x to the right and y down, like image columns and rows.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def trajectory_extent(points: np.ndarray) -> float:
    """The largest distance between any two points of a path (its diameter) in pixels.

    Args:
        points: path samples.

    Returns:
        The diameter; 0 for a single point.

    Shape:
        - points: :math:`(N, 2)`
    """
    p = np.asarray(points, np.float64)
    if len(p) < 2:
        return 0.0
    diff = p[:, None, :] - p[None, :, :]
    return float(np.sqrt((diff**2).sum(-1).max()))


def path_length(points: np.ndarray) -> float:
    """Total length of the polyline through ``points`` in pixels."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(np.diff(p, axis=0), axis=-1).sum()) if len(p) > 1 else 0.0


def resample_trajectory(points: np.ndarray, n_samples: int) -> np.ndarray:
    """Resample a time-uniform path at ``n_samples`` time-uniform instants (linear in between).

    Args:
        points: path samples at equal time steps, any number of columns.
        n_samples: number of output samples (≥ 1); the first and last samples are kept.

    Returns:
        The resampled path, float64.

    Shape:
        - points: :math:`(N, D)`
        - output: :math:`(n\\_samples, D)`
    """
    p = np.asarray(points, np.float64)
    if len(p) == 1 or n_samples == 1:
        return np.repeat(p[len(p) // 2 : len(p) // 2 + 1], n_samples, axis=0)
    t_old = np.linspace(0.0, 1.0, len(p))
    t_new = np.linspace(0.0, 1.0, n_samples)
    return np.stack([np.interp(t_new, t_old, p[:, d]) for d in range(p.shape[1])], axis=1)


def sample_path(points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """A time-uniform path evaluated at fractional sample indices (linear in between).

    Args:
        points: path samples at equal time steps, any number of columns.
        times: where to evaluate, in units of samples: 0 is the first, ``N - 1`` the last.

    Returns:
        The path at ``times``, float64.

    Shape:
        - points: :math:`(N, D)`; times: :math:`(M,)`
        - output: :math:`(M, D)`
    """
    p = np.asarray(points, np.float64)
    grid = np.arange(len(p), dtype=np.float64)
    return np.stack([np.interp(times, grid, p[:, d]) for d in range(p.shape[1])], axis=1)


def arc_length_subframes(
    step_lengths: np.ndarray, step_px: float, min_subframes: int, max_subframes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-frame instants spaced evenly along a motion, each weighted by the time it stands for.

    Sampling a path at equal times leaves gaps wherever it moves fast (ghost copies in the
    average) and wastes samples where it lingers. Here sub-frames sit at equal distances along
    the path, at most about ``step_px`` apart, and each one's weight is the time the motion
    spends within half a spacing of it, so the weighted average is still a time average: a
    pause shows as a bright dwell, as in a real exposure.

    Args:
        step_lengths: motion (in pixels) between consecutive samples of a time-uniform path.
        step_px: the wanted largest distance between sub-frames.
        min_subframes: the fewest sub-frames.
        max_subframes: the most sub-frames (the spacing grows beyond ``step_px`` at the cap).

    Returns:
        ``(times, weights)``: instants in units of the path's samples (for
        :func:`sample_path`) and time weights summing to 1.

    Shape:
        - step_lengths: :math:`(N - 1,)`; outputs: :math:`(M,)`
    """
    steps = np.maximum(np.asarray(step_lengths, np.float64), 0.0)
    n_dense = len(steps) + 1
    total = float(steps.sum())
    n = int(np.clip(math.ceil(total / step_px) + 1, min_subframes, max_subframes))
    if total <= 1e-9:
        return np.linspace(0.0, n_dense - 1.0, n), np.full(n, 1.0 / n)
    # A tiny arc per step keeps arc length strictly increasing, so time is a function of it.
    arc = np.concatenate([[0.0], np.cumsum(steps + total * 1e-9)])
    total = arc[-1]
    grid = np.arange(n_dense, dtype=np.float64)
    centres = np.linspace(0.0, total, n)
    half = total / (n - 1) / 2.0
    times = np.interp(centres, arc, grid)
    edges = np.interp(np.clip(np.concatenate([centres - half, [total]]), 0.0, total), arc, grid)
    weights = np.diff(edges)
    return times, weights / weights.sum()


def random_trajectory(
    rng: np.random.Generator,
    extent_px: float,
    n_samples: int = 128,
    *,
    exposure: float = 1.0,
    jerk_rate: float = 1.5,
    shake: float | None = None,
    pull: float | None = None,
) -> np.ndarray:
    """A random camera-shake path whose diameter is exactly ``extent_px``.

    The motion is simulated over ``exposure`` units of time (one unit is the longest exposure)
    with a nominal speed of one; only then is the path scaled to the requested extent. A short
    exposure therefore sees little of the wandering and few jerks and gives a nearly straight
    streak, a long one gives the curled, doubled-back kernels of real hand shake.

    Args:
        rng: the random generator (the only source of randomness).
        extent_px: the diameter of the returned path in pixels (0 gives a single point).
        n_samples: number of time-uniform samples.
        exposure: exposure length as a fraction of the longest exposure, in (0, 1].
        jerk_rate: expected number of jerks (velocity impulses) per unit of time.
        shake: strength of the random acceleration; drawn from [0.5, 4] when None.
        pull: strength of the pull back towards the start; drawn from [0, 3] when None.

    Returns:
        Path samples in pixels, starting at the origin, float64.

    Shape:
        - output: :math:`(n\\_samples, 2)`
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    if extent_px < 0:
        raise ValueError(f"extent_px must be ≥ 0, got {extent_px}")
    shake = rng.uniform(0.5, 4.0) if shake is None else float(shake)
    pull = rng.uniform(0.0, 3.0) if pull is None else float(pull)
    dt = exposure / (n_samples - 1)
    # Draw everything up front: the loop below then consumes no randomness, so the stream a
    # given seed produces does not depend on the path's shape.
    angle = rng.uniform(0.0, 2.0 * math.pi)
    kicks = rng.standard_normal((n_samples - 1, 2)) * (shake * math.sqrt(dt))
    is_jerk = rng.random(n_samples - 1) < jerk_rate * dt
    jerk_turn = math.pi + rng.uniform(-0.7, 0.7, n_samples - 1)  # mostly a rebound
    jerk_gain = rng.uniform(0.5, 1.5, n_samples - 1)

    points = np.zeros((n_samples, 2))
    vx, vy = math.cos(angle), math.sin(angle)
    x = y = 0.0
    for i in range(n_samples - 1):
        if is_jerk[i]:
            c, s = math.cos(jerk_turn[i]), math.sin(jerk_turn[i])
            vx, vy = jerk_gain[i] * (c * vx - s * vy), jerk_gain[i] * (s * vx + c * vy)
        vx += kicks[i, 0] - pull * x * dt
        vy += kicks[i, 1] - pull * y * dt
        x += vx * dt
        y += vy * dt
        points[i + 1] = x, y

    extent = trajectory_extent(points)
    if extent_px == 0:
        return np.zeros((n_samples, 2))
    if extent < 1e-9:  # the walk stalled: fall back to a straight streak in the first direction
        points = np.outer(np.linspace(0.0, 1.0, n_samples), [math.cos(angle), math.sin(angle)])
        extent = 1.0
    return points * (extent_px / extent)


def _densify(points: np.ndarray, step_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Points ≤ ``step_px`` apart along a time-uniform path, with the time each one stands for."""
    if len(points) == 1:
        return points.copy(), np.ones(1)
    seg = np.diff(points, axis=0)
    counts = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / step_px)).astype(np.int64)
    index = np.repeat(np.arange(len(seg)), counts)
    first = np.cumsum(counts) - counts
    frac = (np.arange(counts.sum()) - first[index] + 0.5) / counts[index]
    dense = points[index] + seg[index] * frac[:, None]
    # Every segment lasts the same time; slow stretches therefore get more weight per pixel.
    weights = 1.0 / counts[index]
    return dense, weights


def splat_bilinear(points: np.ndarray, weights: np.ndarray, height: int, width: int) -> np.ndarray:
    """Accumulate weighted sub-pixel points into an image by bilinear splatting.

    Args:
        points: ``(x, y)`` positions in pixel coordinates of the output (0 is the first centre);
            every point must lie within ``[0, width - 1] × [0, height - 1]``.
        weights: the weight of each point.
        height: output height.
        width: output width.

    Returns:
        float64 image of accumulated weights.

    Shape:
        - points: :math:`(N, 2)`; weights: :math:`(N,)`
        - output: :math:`(height, width)`
    """
    x, y = points[:, 0], points[:, 1]
    x0 = np.clip(np.floor(x).astype(np.int64), 0, width - 2 if width > 1 else 0)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, height - 2 if height > 1 else 0)
    fx, fy = x - x0, y - y0
    out = np.zeros(height * width)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            yy, xx = np.minimum(y0 + dy, height - 1), np.minimum(x0 + dx, width - 1)
            out += np.bincount(yy * width + xx, weights * wy * wx, minlength=height * width)
    return out.reshape(height, width)


def blur_kernel_from_trajectory(points: np.ndarray, *, step_px: float = 0.1) -> np.ndarray:
    """Rasterise a time-uniform trajectory into a normalised blur kernel.

    The kernel's centre of mass sits on its centre pixel, so blurring does not shift the image
    as a whole: the sharp photo stays aligned with the centre of its own blur.

    Args:
        points: path samples at equal time steps, in pixels.
        step_px: densification step; the path is splatted from points at most this far apart.

    Returns:
        A square kernel of odd side, float32, non-negative, summing to 1.

    Shape:
        - points: :math:`(N, 2)`
        - output: :math:`(K, K)` with K odd
    """
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise ValueError(f"points must have shape (N, 2), got {p.shape}")
    dense, weights = _densify(p, step_px)
    centre = (dense * weights[:, None]).sum(0) / weights.sum()
    dense = dense - centre
    half = math.ceil(np.abs(dense).max()) + 1
    size = 2 * half + 1
    kernel = splat_bilinear(dense + half, weights, size, size)
    kernel /= kernel.sum()
    return kernel.astype(np.float32)


def kernel_extent(kernel: np.ndarray, threshold: float = 0.0) -> float:
    """Diameter of a kernel's support: the largest distance between two pixel centres above it.

    Args:
        kernel: a 2-D kernel.
        threshold: pixels with a value above ``threshold × kernel.max()`` count as support.

    Returns:
        The diameter in pixels (0 for a single-pixel kernel).
    """
    ys, xs = np.nonzero(kernel > threshold * kernel.max())
    return trajectory_extent(np.stack([xs, ys], axis=1).astype(np.float64))


def convolve_linear(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an image (in linear light) with a blur kernel; borders are reflected.

    A true convolution, not OpenCV's correlation: a single bright pixel becomes the kernel,
    oriented as rasterised.

    Args:
        image: float32 image in linear light.
        kernel: odd-sided 2-D kernel.

    Returns:
        The blurred image, float32, same shape as ``image``.

    Shape:
        - image: :math:`(H, W)` or :math:`(H, W, C)`
        - kernel: :math:`(K, K)`
    """
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {kernel.shape}")
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    return cv2.filter2D(
        np.asarray(image, np.float32), -1, flipped, borderType=cv2.BORDER_REFLECT_101
    )
