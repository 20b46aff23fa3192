"""Object motion: a soft-edged foreground patch moving on its own path over a shaken background.

Every sub-frame is composited in linear light: the background shifted by the camera's motion,
the object by the camera's plus its own (and slightly turned), over it with its soft mask. The
exposure is the average of the sub-frames, so the object smears across the background, the
background shows through the object's blurred edges, and the parts it uncovers are blurred by
the camera alone, as in a real exposure.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from training.data.psf import convolve_linear, random_trajectory, splat_bilinear

_SUPERSAMPLE = 4  # polygon edges are drawn at 4× and area-averaged: an anti-aliased mask


def random_object_mask(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    feather_px: tuple[float, float] = (0.7, 2.0),
    polygon_probability: float = 0.5,
) -> np.ndarray:
    """A soft mask filling most of a ``height × width`` box: an ellipse or a random polygon.

    Polygons are star-shaped (vertices at random radii around the centre), which gives the
    irregular outlines of real objects; ellipses give round ones. The edge is anti-aliased and
    then feathered by a Gaussian, like a slightly out-of-focus silhouette.

    Args:
        rng: the random generator.
        height: mask height.
        width: mask width.
        feather_px: range of the feathering standard deviation in pixels.
        polygon_probability: chance of a polygon rather than an ellipse.

    Returns:
        float32 alpha in [0, 1], zero along the border.

    Shape:
        - output: :math:`(height, width)`
    """
    s = _SUPERSAMPLE
    canvas = np.zeros((height * s, width * s), np.uint8)
    cx, cy = (width * s - 1) / 2.0, (height * s - 1) / 2.0
    is_polygon = rng.random() < polygon_probability
    n_vertices = int(rng.integers(5, 13))
    radii = rng.uniform(0.55, 1.0, n_vertices)
    angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, n_vertices))
    sigma = float(rng.uniform(*feather_px))
    # Keep a border of 2.5 sigma free, so the feathered edge fades out inside the box.
    border = (math.ceil(2.5 * sigma) + 1) * s
    rx, ry = max(width * s * 0.5 - border, s), max(height * s * 0.5 - border, s)
    if is_polygon:
        pts = np.stack([cx + rx * radii * np.cos(angles), cy + ry * radii * np.sin(angles)], 1)
        cv2.fillPoly(canvas, [np.rint(pts).astype(np.int32)], 255, lineType=cv2.LINE_8)
    else:
        cv2.ellipse(
            canvas,
            (round(cx), round(cy)),
            (max(round(rx), 1), max(round(ry), 1)),
            0,
            0,
            360,
            255,
            -1,
        )
    mask = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    alpha = mask.astype(np.float32) * (1.0 / 255.0)
    soft = cv2.GaussianBlur(alpha, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(soft, 0.0, 1.0, out=soft)


def random_object_path(
    rng: np.random.Generator,
    extent_px: float,
    n_samples: int = 128,
    *,
    max_rotation_degrees: float = 8.0,
    exposure: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """An object's own motion: a smooth path of the given extent and a steady slight turn.

    Objects move with momentum, so the path has fewer jerks and less wandering than hand shake.

    Args:
        rng: the random generator.
        extent_px: diameter of the translation path in pixels.
        n_samples: time-uniform samples.
        max_rotation_degrees: the turn over the exposure is drawn from ±this.
        exposure: exposure length as a fraction of the longest exposure, in (0, 1].

    Returns:
        ``(offsets, angles)``: translations in pixels and rotation angles in radians.

    Shape:
        - offsets: :math:`(n\\_samples, 2)`; angles: :math:`(n\\_samples,)`
    """
    offsets = random_trajectory(
        rng, extent_px, n_samples, exposure=exposure, jerk_rate=0.3, shake=rng.uniform(0.0, 1.5)
    )
    turn = math.radians(rng.uniform(-max_rotation_degrees, max_rotation_degrees))
    return offsets, np.linspace(0.0, turn, n_samples)


def premultiplied_layer(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """An RGBA layer with colour premultiplied by alpha (so bilinear warps blend correctly).

    Shape:
        - image: :math:`(H, W, 3)` float32 linear; alpha: :math:`(H, W)`
        - output: :math:`(H, W, 4)`
    """
    return np.concatenate([image * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)


def _object_warp(
    size: tuple[int, int], origin: np.ndarray, offset: np.ndarray, angle: float
) -> np.ndarray:
    """Affine map (crop pixel → layer pixel) of an object placed at ``origin + offset``,
    turned by ``angle`` about its centre."""
    h, w = size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    c, s = math.cos(angle), math.sin(angle)
    inv_rot = np.array([[c, s], [-s, c]])  # rotation by −angle
    # layer = R⁻¹ (crop − origin − offset − centre) + centre
    shift = centre - inv_rot @ (origin + offset + centre)
    return np.concatenate([inv_rot, shift[:, None]], axis=1)


def swept_box(
    layer_size: tuple[int, int],
    origin: np.ndarray,
    offsets: np.ndarray,
    angles: np.ndarray,
    crop: tuple[int, int],
    pad: int = 2,
) -> tuple[int, int, int, int] | None:
    """The part of the crop the object covers at some time, as ``(x0, y0, x1, y1)``; None if none.

    Shape:
        - offsets: :math:`(N, 2)`; angles: :math:`(N,)`
    """
    h, w = layer_size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64) - centre
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    pts = np.einsum("nij,pj->npi", rot, corners) + (origin + centre + offsets)[:, None]
    x0, y0 = np.floor(pts.reshape(-1, 2).min(0)).astype(int) - pad
    x1, y1 = np.ceil(pts.reshape(-1, 2).max(0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, crop[1]), min(y1, crop[0])
    return (int(x0), int(y0), int(x1), int(y1)) if x0 < x1 and y0 < y1 else None


def composite_moving_object(
    background: np.ndarray,
    margin: int,
    layer: np.ndarray,
    origin: np.ndarray,
    camera_offsets: np.ndarray,
    object_offsets: np.ndarray,
    object_angles: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average of the sub-frames of a moving object over a camera-shaken background.

    Sub-frame ``t`` shows the background shifted by ``camera_offsets[t]`` and, over it, the
    object layer placed with its top-left at ``origin``, shifted by ``camera_offsets[t] +
    object_offsets[t]`` and turned by ``object_angles[t]``. With all offsets and angles zero
    the result is the sharp composite (an integer ``origin`` places the object without
    resampling).

    Args:
        background: float32 linear background with ``margin`` extra pixels on every side.
        margin: the background's margin; it must cover the camera offsets plus one pixel.
        layer: premultiplied RGBA object layer (see :func:`premultiplied_layer`).
        origin: ``(x, y)`` of the object's top-left in crop pixels at the reference time.
        camera_offsets: camera shift per sub-frame in pixels.
        object_offsets: the object's own shift per sub-frame in pixels.
        object_angles: the object's turn per sub-frame in radians.
        weights: time weight of each sub-frame (normalised here); equal when None.

    Returns:
        float32 linear crop.

    Shape:
        - background: :math:`(H + 2m, W + 2m, 3)`; layer: :math:`(h, w, 4)`
        - offsets: :math:`(N, 2)`; angles, weights: :math:`(N,)`
        - output: :math:`(H, W, 3)`
    """
    crop = (background.shape[0] - 2 * margin, background.shape[1] - 2 * margin)
    origin = np.asarray(origin, np.float64)
    moves = np.asarray(camera_offsets, np.float64) + object_offsets
    box = swept_box(layer.shape[:2], origin, moves, np.asarray(object_angles), crop)
    n = len(moves)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    # Σ_t w_t·(bg_t·(1 − α_t) + obj_t) = Σ_t w_t·bg_t + Σ_t w_t·(obj_t − bg_t·α_t). The first sum
    # is the background convolved with the camera's kernel (a bilinear splat of its offsets is
    # exactly a sum of bilinear shifts); the second is zero outside the object's swept box, so
    # the per-sub-frame work is only the size of that box.
    d = np.asarray(camera_offsets, np.float64)
    half = math.ceil(np.abs(d).max()) + 1
    kernel = splat_bilinear(d + half, w, 2 * half + 1, 2 * half + 1).astype(np.float32)
    acc = convolve_linear(background, kernel)[margin : margin + crop[0], margin : margin + crop[1]]
    if box is None:
        return acc
    x0, y0, x1, y1 = box
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for shift, move, angle, weight in zip(d, moves, object_angles, w, strict=True):
        if weight == 0.0:
            continue
        # The scene moves by the camera shift in the image: pixel p shows background p − shift.
        to_bg = np.array([[1.0, 0.0, margin + x0 - shift[0]], [0.0, 1.0, margin + y0 - shift[1]]])
        bg = cv2.warpAffine(
            background, to_bg, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REFLECT_101
        )
        warp = _object_warp(layer.shape[:2], origin - (x0, y0), move, float(angle))
        obj = cv2.warpAffine(
            layer, warp, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT
        )
        obj[..., :3] -= bg * obj[..., 3:4]
        acc[y0:y1, x0:x1] += np.float32(weight) * obj[..., :3]
    return acc
