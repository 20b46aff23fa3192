"""6-DoF camera shake: sub-frames warped along a smooth camera path, averaged in linear light.

This follows how GoPro-style datasets are made (averaging consecutive 240 fps frames), with a
synthetic camera instead of a real one: a pinhole camera rotates (yaw, pitch, roll), translates
parallel to the image plane and zooms slightly along a random path during the exposure. Each
sub-frame is the photo warped by the homography of one pose; their average in linear light is
the blurred image. Rotation about the optical axis and zoom move pixels by amounts that grow
with the distance from the image centre, so the blur varies across the frame the way real
shake blur does.

A homography here maps an *output* pixel to the *source* pixel it shows (OpenCV's
``WARP_INVERSE_MAP`` convention), as ``(x, y, 1)`` column vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from training.data.psf import arc_length_subframes, random_trajectory, sample_path

#: Columns of a camera path: rotations and zoom expressed in pixel-equivalents (see
#: :func:`camera_path_homographies`), translations in pixels.
PATH_COLUMNS = ("yaw_px", "pitch_px", "roll_px", "shift_x_px", "shift_y_px", "zoom_px")


def focal_length_px(width: int, height: int, fov_degrees: float = 60.0) -> float:
    """Focal length in pixels of a pinhole camera with the given diagonal field of view."""
    return 0.5 * math.hypot(width, height) / math.tan(math.radians(fov_degrees) / 2.0)


def camera_path_homographies(
    path: np.ndarray, focal_px: float, centre: tuple[float, float], radius_px: float
) -> np.ndarray:
    """Homographies of the camera poses along a path.

    Rotations and zoom are given as the displacement they cause, in pixels, so that every
    column of a path is on the same footing: yaw and pitch move the image centre by about
    ``focal_px · angle``; roll and zoom move a point at ``radius_px`` from the centre by about
    ``radius_px · angle`` and ``radius_px · zoom``.

    Args:
        path: poses, columns as in :data:`PATH_COLUMNS`.
        focal_px: focal length in pixels.
        centre: principal point ``(cx, cy)`` in pixels.
        radius_px: the reference radius for roll and zoom (typically the half-diagonal).

    Returns:
        float64 homographies, output pixel → source pixel.

    Shape:
        - path: :math:`(N, 6)`
        - output: :math:`(N, 3, 3)`
    """
    p = np.asarray(path, np.float64)
    yaw, pitch = p[:, 0] / focal_px, p[:, 1] / focal_px
    roll, zoom = p[:, 2] / radius_px, np.exp(p[:, 5] / radius_px)
    cx, cy = centre
    n = len(p)
    K = np.array([[focal_px, 0.0, cx], [0.0, focal_px, cy], [0.0, 0.0, 1.0]])
    K_inv = np.linalg.inv(K)

    def rotation(axis: int, angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        R = np.tile(np.eye(3), (n, 1, 1))
        R[:, i, i], R[:, j, j], R[:, i, j], R[:, j, i] = c, c, -s, s
        return R

    R = rotation(2, roll) @ rotation(1, yaw) @ rotation(0, pitch)
    S = np.tile(np.eye(3), (n, 1, 1))
    S[:, 0, 0] = S[:, 1, 1] = zoom
    S[:, 0, 2] = cx * (1.0 - zoom) + p[:, 3]
    S[:, 1, 2] = cy * (1.0 - zoom) + p[:, 4]
    return S @ K @ R @ K_inv


def map_points(homographies: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply every homography to every point.

    Shape:
        - homographies: :math:`(N, 3, 3)`; points: :math:`(P, 2)`
        - output: :math:`(N, P, 2)`
    """
    pts = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    mapped = np.einsum("nij,pj->npi", homographies, pts)
    return mapped[..., :2] / mapped[..., 2:3]


def window_points(left: float, top: float, width: float, height: float) -> np.ndarray:
    """The four corners and the centre of a window, as ``(x, y)`` pixel centres."""
    x1, y1 = left + width - 1, top + height - 1
    return np.array(
        [[left, top], [x1, top], [left, y1], [x1, y1], [(left + x1) / 2, (top + y1) / 2]]
    )


def displacement_extent(homographies: np.ndarray, points: np.ndarray) -> float:
    """The largest blur extent over ``points``: the diameter of each point's path, maximised.

    Shape:
        - homographies: :math:`(N, 3, 3)`; points: :math:`(P, 2)`
    """
    tracks = map_points(homographies, points)  # (N, P, 2)
    diff = tracks[:, None] - tracks[None, :]
    return float(np.sqrt((diff**2).sum(-1)).max()) if len(homographies) > 1 else 0.0


def relative_to_centre(
    homographies: np.ndarray, points: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Re-express a path relative to the pose nearest its centre of mass.

    The pose whose mapped ``points`` lie closest to their time average becomes the identity,
    so the unwarped image (the sharp target) is aligned with the centre of its own blur.

    Args:
        homographies: the poses' homographies.
        points: points whose mapped positions define the centre.
        weights: time weight of each pose; equal when None.

    Returns:
        The relative homographies ``H_t · H_r⁻¹`` and the reference index ``r``.

    Shape:
        - homographies: :math:`(N, 3, 3)`; points: :math:`(P, 2)`; weights: :math:`(N,)`
    """
    tracks = map_points(homographies, points)
    centre = np.average(tracks, axis=0, weights=weights)
    r = int(np.argmin(((tracks - centre) ** 2).sum((1, 2))))
    relative = homographies @ np.linalg.inv(homographies[r])
    relative /= relative[:, 2:3, 2:3]
    return relative, r


def random_camera_path(
    rng: np.random.Generator,
    n_samples: int = 128,
    *,
    exposure: float = 1.0,
    jerk_rate: float = 1.5,
    roll_weight: tuple[float, float] = (0.2, 1.0),
    shift_weight: tuple[float, float] = (0.0, 0.5),
    zoom_weight: tuple[float, float] = (0.0, 0.3),
) -> np.ndarray:
    """A smooth random 6-DoF camera path of unit-order size (scale it to an extent later).

    Three independent shake trajectories (see :func:`training.data.psf.random_trajectory`) drive
    yaw/pitch, roll/zoom and the two shifts; yaw and pitch dominate, as they do for a handheld
    camera, and the others are weighted by random factors from the given ranges.

    Args:
        rng: the random generator.
        n_samples: time-uniform samples.
        exposure: exposure length as a fraction of the longest exposure, in (0, 1].
        jerk_rate: expected jerks per unit of time.
        roll_weight: range of the roll trajectory's weight relative to yaw/pitch.
        shift_weight: range of the shift trajectory's weight.
        zoom_weight: range of the zoom weight (zoom shares the roll trajectory's second axis).

    Returns:
        The path, columns as in :data:`PATH_COLUMNS`.

    Shape:
        - output: :math:`(n\\_samples, 6)`
    """

    def track() -> np.ndarray:
        return random_trajectory(rng, 1.0, n_samples, exposure=exposure, jerk_rate=jerk_rate)

    rot, roll_zoom, shift = track(), track(), track()
    w_roll, w_shift, w_zoom = (rng.uniform(*w) for w in (roll_weight, shift_weight, zoom_weight))
    return np.column_stack(
        [rot, w_roll * roll_zoom[:, 0], w_shift * shift, w_zoom * roll_zoom[:, 1]]
    )


def scale_path_to_extent(
    path: np.ndarray,
    extent_px: float,
    points: np.ndarray,
    focal_px: float,
    centre: tuple[float, float],
    radius_px: float,
) -> np.ndarray:
    """Scale a path so that the blur extent over ``points`` is ``extent_px``.

    Small rotations act almost linearly, so a few proportional corrections converge well
    within a tenth of a pixel.

    Args:
        path: the camera path, columns as in :data:`PATH_COLUMNS`.
        extent_px: the wanted extent in pixels (0 gives a still camera).
        points: the points whose largest path diameter is the extent (a crop's corners).
        focal_px: focal length in pixels.
        centre: principal point.
        radius_px: reference radius for roll and zoom.

    Returns:
        The scaled path, starting at zero.

    Raises:
        ValueError: the path does not move the points at all.

    Shape:
        - path: :math:`(N, 6)`; points: :math:`(P, 2)`; output: :math:`(N, 6)`
    """
    path = np.asarray(path, np.float64) - path[0]
    if extent_px == 0:
        return np.zeros_like(path)
    for _ in range(4):
        homs = camera_path_homographies(path, focal_px, centre, radius_px)
        extent = displacement_extent(relative_to_centre(homs, points)[0], points)
        if extent < 1e-9:
            raise ValueError("the camera path does not move the given points")
        path = path * (extent_px / extent)
    return path


def camera_shake_homographies(
    path: np.ndarray,
    points: np.ndarray,
    focal_px: float,
    centre: tuple[float, float],
    radius_px: float,
    *,
    step_px: float = 1.0,
    min_subframes: int = 2,
    max_subframes: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-frame homographies and time weights for a (scaled) path, relative to its centre pose.

    Sub-frames are spaced evenly along the motion of the fastest of ``points``, about
    ``step_px`` apart (see :func:`training.data.psf.arc_length_subframes`): with bilinear
    warps, 1 px steps already look like a continuous smear, where a handful of 240 fps frames
    would leave ghosts.

    Args:
        path: the camera path, columns as in :data:`PATH_COLUMNS`, densely sampled in time.
        points: points whose motion sets the sub-frames (e.g. a crop's corners).
        focal_px: focal length in pixels.
        centre: principal point.
        radius_px: reference radius for roll and zoom.
        step_px: the wanted largest motion between sub-frames.
        min_subframes: the fewest sub-frames.
        max_subframes: the most sub-frames.

    Returns:
        ``(homographies, weights)``: output pixel → source pixel, one of them the identity;
        time weights summing to 1.

    Shape:
        - path: :math:`(N, 6)`; points: :math:`(P, 2)`
        - outputs: :math:`(M, 3, 3)` and :math:`(M,)`
    """
    homs = camera_path_homographies(path, focal_px, centre, radius_px)
    tracks = map_points(homs, points)
    steps = np.linalg.norm(np.diff(tracks, axis=0), axis=-1).max(axis=1)
    times, weights = arc_length_subframes(steps, step_px, min_subframes, max_subframes)
    homs = camera_path_homographies(sample_path(path, times), focal_px, centre, radius_px)
    return relative_to_centre(homs, points, weights)[0], weights


def source_bounds(
    homographies: np.ndarray, left: int, top: int, width: int, height: int, pad: int = 2
) -> tuple[int, int, int, int]:
    """The source window every sub-frame of an output window reads from.

    Returns:
        ``(left, top, width, height)`` in source pixels, padded by ``pad`` for interpolation.
    """
    corners = window_points(left, top, width, height)[:4]
    mapped = map_points(homographies, corners).reshape(-1, 2)
    x0, y0 = np.floor(mapped.min(0)).astype(int) - pad
    x1, y1 = np.ceil(mapped.max(0)).astype(int) + pad
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def shift_homographies(
    homographies: np.ndarray, output_origin: Sequence[float], source_origin: Sequence[float]
) -> np.ndarray:
    """Re-base homographies from full-image coordinates to a crop of the output and of the source.

    Args:
        homographies: output → source homographies in full-image coordinates.
        output_origin: ``(x, y)`` of the output crop's first pixel.
        source_origin: ``(x, y)`` of the source region's first pixel.

    Shape:
        - homographies: :math:`(N, 3, 3)`; output: :math:`(N, 3, 3)`
    """
    to_full = np.array([[1.0, 0.0, output_origin[0]], [0.0, 1.0, output_origin[1]], [0, 0, 1]])
    to_region = np.array([[1.0, 0.0, -source_origin[0]], [0.0, 1.0, -source_origin[1]], [0, 0, 1]])
    return to_region @ homographies @ to_full


def average_warped_subframes(
    source: np.ndarray,
    homographies: np.ndarray,
    out_size: tuple[int, int],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average the source warped by each homography: the exposure of a moving camera.

    Args:
        source: float32 image in linear light.
        homographies: output pixel → source pixel, in the coordinates of ``source`` and of
            the output.
        out_size: output ``(height, width)``.
        weights: time weight of each sub-frame (normalised here); equal when None.

    Returns:
        float32 average in linear light.

    Shape:
        - source: :math:`(H_s, W_s, C)`; homographies: :math:`(N, 3, 3)`; weights: :math:`(N,)`
        - output: :math:`(height, width, C)`
    """
    src = np.ascontiguousarray(source, np.float32)
    height, width = out_size
    acc = np.zeros((height, width, *src.shape[2:]), np.float32)
    n = len(homographies)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for H, weight in zip(homographies, w, strict=True):
        if weight == 0.0:
            continue
        warped = cv2.warpPerspective(
            src, H, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT_101
        )
        acc += warped * np.float32(weight) if n > 1 else warped
    return acc
