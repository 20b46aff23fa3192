"""Synthetic blurred/sharp pairs from sharp photos: the training dataset, the fixed validation
set, and camera shake for whole video clips.

Three kinds of blur, mixed by weights:

* ``"psf"``: a camera-shake kernel from a random 2-D trajectory (:mod:`training.data.psf`),
  convolved in linear light; uniform over the crop.
* ``"homography"``: 6-DoF camera shake (:mod:`training.data.homography`), sub-frames warped
  along a smooth random path and averaged in linear light; varies across the frame.
* ``"object"``: a soft-edged patch from another photo moving on its own path over a shaken
  background (:mod:`training.data.object_motion`), composited per sub-frame in linear light.

Then the input alone is degraded (:mod:`training.data.degrade`: defocus, Poisson-Gaussian noise,
8-bit encoding, JPEG). Photometric jitter (:mod:`training.data.augment`) is applied to the source
photos before synthesis, so it changes both images alike; flips and 90° rotations are applied to
both images after it.

Blur extents are given in pixels of a 1280×720 frame and scaled by each photo's diagonal, so a
smaller photo (a downscaled view of a scene) gets proportionally less blur. Everything is
computed at crop size: only the crop plus the margin its blur reaches into is read and
linearised. The sharp target is always the photo's own pixels at the crop (or, for ``"object"``,
the scene at the reference instant): it is never resampled.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from training.data.augment import (
    ColourJitter,
    ColourJitterConfig,
    apply_colour_jitter,
    crop_size,
    dihedral,
    item_rng,
    random_crop_origin,
    random_dihedral_code,
    reflect_crop,
    sample_colour_jitter,
)
from training.data.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from training.data.degrade import DegradationConfig, degrade_to_uint8, sample_degradation
from training.data.homography import (
    average_warped_subframes,
    camera_path_homographies,
    camera_shake_homographies,
    displacement_extent,
    focal_length_px,
    random_camera_path,
    relative_to_centre,
    scale_path_to_extent,
    shift_homographies,
    source_bounds,
    window_points,
)
from training.data.object_motion import (
    composite_moving_object,
    premultiplied_layer,
    random_object_mask,
    random_object_path,
)
from training.data.paired import DatasetError, image_to_tensor, list_images, read_rgb
from training.data.pairset import write_pair_set
from training.data.psf import (
    arc_length_subframes,
    blur_kernel_from_trajectory,
    convolve_linear,
    random_trajectory,
    sample_path,
)

KINDS = ("psf", "homography", "object")
DEFAULT_WEIGHTS = {"psf": 0.4, "homography": 0.4, "object": 0.2}
REFERENCE_SIZE = (1280, 720)
_DENSE_SAMPLES = 128  # time samples of a motion before it is resampled to sub-frames


def _range(value: Sequence[float], name: str, low_bound: float = 0.0) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not low_bound <= low <= high:
        raise ValueError(f"{name} must satisfy {low_bound} ≤ low ≤ high, got {value!r}")
    return low, high


@dataclass(frozen=True)
class SynthesisConfig:
    """How blur is synthesised (all kinds).

    Attributes:
        extent_px: range of the blur extent (the diameter of the motion path) in pixels of a
            ``reference_size`` frame; drawn uniformly.
        reference_size: ``(width, height)`` the extents refer to; extents are scaled by the
            ratio of diagonals. None uses them as pixels of the photo itself.
        exposure: range of the exposure length as a fraction of the longest one: short
            exposures give straighter paths, long ones the curled paths of real shake.
        jerk_rate: expected camera jerks per longest exposure.
        subframe_step_px: wanted largest motion between sub-frames (homography, object).
        max_subframes: the most sub-frames one item averages.
        fov_degrees: range of the camera's diagonal field of view (homography).
        object_size: range of the object's height as a fraction of the crop height.
        object_aspect: range of the object's width/height ratio (drawn log-uniformly).
        object_extent: range of the object's own motion extent, as a fraction of the drawn extent.
        camera_extent_with_object: range of the background's camera-shake extent, as a fraction
            of the drawn extent, in ``"object"`` items.
        max_object_rotation_degrees: the object turns by at most this much over the exposure.
    """

    extent_px: tuple[float, float] = (2.0, 35.0)
    reference_size: tuple[int, int] | None = REFERENCE_SIZE
    exposure: tuple[float, float] = (0.25, 1.0)
    jerk_rate: float = 1.5
    subframe_step_px: float = 1.0
    max_subframes: int = 64
    fov_degrees: tuple[float, float] = (50.0, 75.0)
    object_size: tuple[float, float] = (0.25, 0.6)
    object_aspect: tuple[float, float] = (0.6, 1.6)
    object_extent: tuple[float, float] = (0.4, 1.0)
    camera_extent_with_object: tuple[float, float] = (0.0, 0.3)
    max_object_rotation_degrees: float = 8.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "extent_px", _range(self.extent_px, "extent_px"))
        if self.reference_size is not None:
            w, h = (int(v) for v in self.reference_size)
            if w < 1 or h < 1:
                raise ValueError(f"reference_size must be positive, got {self.reference_size!r}")
            set_(self, "reference_size", (w, h))
        set_(self, "exposure", _range(self.exposure, "exposure", 1e-3))
        if self.exposure[1] > 1.0:
            raise ValueError(f"exposure must lie in (0, 1], got {self.exposure!r}")
        set_(self, "fov_degrees", _range(self.fov_degrees, "fov_degrees", 1.0))
        if self.fov_degrees[1] >= 170:
            raise ValueError(f"fov_degrees must be below 170, got {self.fov_degrees!r}")
        for name in ("object_size", "object_aspect", "object_extent", "camera_extent_with_object"):
            set_(self, name, _range(getattr(self, name), name, 1e-3 if "object_" in name else 0))
        if self.object_size[1] > 1.0:
            raise ValueError(f"object_size must lie in (0, 1], got {self.object_size!r}")
        if self.subframe_step_px <= 0 or self.max_subframes < 2:
            raise ValueError("subframe_step_px must be > 0 and max_subframes ≥ 2")


_Config = TypeVar("_Config")


def _config(value: Any, cls: type[_Config], name: str) -> _Config | None:
    """``cls`` from an instance, a mapping of its fields (as read from YAML) or None."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown {name} keys {unknown}; known: {sorted(known)}")
        return cls(**value)
    raise TypeError(f"{name} must be a {cls.__name__}, a dict or None, not {type(value).__name__}")


def blur_probabilities(weights: Mapping[str, float] | None) -> np.ndarray:
    """Probabilities of :data:`KINDS` from weights by kind name (missing kinds weigh 0).

    Raises:
        ValueError: an unknown kind, a negative weight, or all weights zero.
    """
    weights = DEFAULT_WEIGHTS if weights is None else weights
    unknown = sorted(set(weights) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown blur kinds {unknown}; known: {list(KINDS)}")
    w = np.array([float(weights.get(k, 0.0)) for k in KINDS])
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"blur weights must be ≥ 0 and not all 0, got {dict(weights)}")
    return w / w.sum()


def extent_scale(height: int, width: int, reference_size: tuple[int, int] | None) -> float:
    """Factor from reference-frame pixels to pixels of an image of this size (diagonal ratio)."""
    if reference_size is None:
        return 1.0
    return math.hypot(width, height) / math.hypot(*reference_size)


# --- the three kinds ------------------------------------------------------------------------
# Each returns (blurred linear float32 crop, sharp uint8 crop, meta). They draw from ``rng`` in a
# fixed order, so an item is a pure function of its generator's seed.


def _psf_pair(
    photo: np.ndarray,
    rng: np.random.Generator,
    crop: tuple[int, int],
    extent: float,
    cfg: SynthesisConfig,
    jitter: ColourJitter | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    exposure = float(rng.uniform(*cfg.exposure))
    path = random_trajectory(
        rng, extent, _DENSE_SAMPLES, exposure=exposure, jerk_rate=cfg.jerk_rate
    )
    kernel = blur_kernel_from_trajectory(path)
    m = kernel.shape[0] // 2
    top, left = random_crop_origin(rng, *photo.shape[:2], crop, margin=m)
    # Blur the crop plus the kernel's reach only: the crop's border then sees real neighbours.
    window = (top - m, left - m, crop[0] + 2 * m, crop[1] + 2 * m)
    region = apply_colour_jitter(reflect_crop(photo, *window), jitter)
    inner = np.s_[m : m + crop[0], m : m + crop[1]]
    blurred = convolve_linear(srgb_uint8_to_linear(region), kernel)[inner]
    meta = {"exposure": exposure, "kernel_size": int(kernel.shape[0]), "origin": [left, top]}
    return blurred, region[inner], meta


def _homography_pair(
    photo: np.ndarray,
    rng: np.random.Generator,
    crop: tuple[int, int],
    extent: float,
    cfg: SynthesisConfig,
    jitter: ColourJitter | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    h, w = photo.shape[:2]
    exposure = float(rng.uniform(*cfg.exposure))
    fov = float(rng.uniform(*cfg.fov_degrees))
    path = random_camera_path(rng, _DENSE_SAMPLES, exposure=exposure, jerk_rate=cfg.jerk_rate)
    top, left = random_crop_origin(rng, h, w, crop, margin=math.ceil(extent) + 2)
    camera = (focal_length_px(w, h, fov), ((w - 1) / 2.0, (h - 1) / 2.0), math.hypot(w, h) / 2.0)
    points = window_points(left, top, crop[1], crop[0])
    path = scale_path_to_extent(path, extent, points, *camera)
    homs, weights = camera_shake_homographies(
        path, points, *camera, step_px=cfg.subframe_step_px, max_subframes=cfg.max_subframes
    )
    sx, sy, sw, sh = source_bounds(homs, left, top, crop[1], crop[0])
    region = apply_colour_jitter(reflect_crop(photo, sy, sx, sh, sw), jitter)
    local = shift_homographies(homs, (left, top), (sx, sy))
    blurred = average_warped_subframes(srgb_uint8_to_linear(region), local, crop, weights)
    sharp = region[top - sy : top - sy + crop[0], left - sx : left - sx + crop[1]]
    meta = {
        "exposure": exposure,
        "fov_degrees": fov,
        "subframes": len(homs),
        "measured_extent_px": displacement_extent(homs, points),
        "origin": [left, top],
    }
    return blurred, np.ascontiguousarray(sharp), meta


def _object_pair(
    photo: np.ndarray,
    other: np.ndarray,
    rng: np.random.Generator,
    crop: tuple[int, int],
    extent: float,
    cfg: SynthesisConfig,
    jitter: ColourJitter | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    exposure = float(rng.uniform(*cfg.exposure))
    cam_extent = extent * float(rng.uniform(*cfg.camera_extent_with_object))
    obj_extent = extent * float(rng.uniform(*cfg.object_extent))
    camera = random_trajectory(
        rng, cam_extent, _DENSE_SAMPLES, exposure=exposure, jerk_rate=cfg.jerk_rate
    )
    offsets, angles = random_object_path(
        rng,
        obj_extent,
        _DENSE_SAMPLES,
        exposure=exposure,
        max_rotation_degrees=cfg.max_object_rotation_degrees,
    )
    oh = max(8, round(crop[0] * rng.uniform(*cfg.object_size)))
    aspect = math.exp(rng.uniform(*np.log(cfg.object_aspect)))
    ow = int(np.clip(round(oh * aspect), 8, crop[1]))
    # The reference instant (the sharp target) is the one nearest the centre of both motions.
    moved = camera + offsets
    r = int(
        np.argmin(((camera - camera.mean(0)) ** 2).sum(1) + ((moved - moved.mean(0)) ** 2).sum(1))
    )
    camera, offsets, angles = camera - camera[r], offsets - offsets[r], angles - angles[r]
    # Sub-frames evenly spaced along the fastest motion: the object's edge, which moves with
    # the camera, its own path and its turn.
    moved = camera + offsets
    steps = np.maximum(
        np.linalg.norm(np.diff(camera, axis=0), axis=1),
        np.linalg.norm(np.diff(moved, axis=0), axis=1)
        + np.abs(np.diff(angles)) * math.hypot(oh, ow) / 2.0,
    )
    times, weights = arc_length_subframes(steps, cfg.subframe_step_px, 2, cfg.max_subframes)
    camera, offsets = sample_path(camera, times), sample_path(offsets, times)
    angles = sample_path(angles[:, None], times)[:, 0]

    m = math.ceil(np.abs(camera).max()) + 2
    top, left = random_crop_origin(rng, *photo.shape[:2], crop, margin=m)
    background = apply_colour_jitter(
        reflect_crop(photo, top - m, left - m, crop[0] + 2 * m, crop[1] + 2 * m), jitter
    )
    oy, ox = random_crop_origin(rng, *other.shape[:2], (oh, ow))
    patch = apply_colour_jitter(reflect_crop(other, oy, ox, oh, ow), jitter)
    alpha = random_object_mask(rng, oh, ow)
    centre = rng.uniform(0.15, 0.85, 2) * (crop[1], crop[0])
    origin = np.rint(centre - ((ow - 1) / 2.0, (oh - 1) / 2.0))  # integer: sharp is not resampled

    bg_linear = srgb_uint8_to_linear(background)
    layer = premultiplied_layer(srgb_uint8_to_linear(patch), alpha)
    blurred = composite_moving_object(bg_linear, m, layer, origin, camera, offsets, angles, weights)
    still = np.zeros((1, 2))
    sharp = linear_to_srgb_uint8(
        composite_moving_object(bg_linear, m, layer, origin, still, still, np.zeros(1))
    )
    meta = {
        "exposure": exposure,
        "camera_extent_px": cam_extent,
        "object_extent_px": obj_extent,
        "object_size": [ow, oh],
        "subframes": len(times),
        "origin": [left, top],
    }
    return blurred, sharp, meta


# --- the dataset ----------------------------------------------------------------------------

DEFAULT_DEGRADATION = DegradationConfig()
DEFAULT_COLOUR_JITTER = ColourJitterConfig()


class SyntheticBlurDataset:
    """Blurred/sharp pairs synthesised on the fly from a folder of sharp photos.

    A map-style dataset for ``torch.utils.data.DataLoader``: items are
    ``{"blur": tensor, "sharp": tensor}``, float32 ``3 × H × W`` in [0, 1]. Item ``i`` uses
    photo ``i mod N`` (so each epoch of length N sees every photo once) and a generator seeded
    from ``(seed, epoch, i)`` alone, so it is identical across runs, worker counts and worker
    order. Generation is pure NumPy/OpenCV per item and holds no global state.

    In workers, prefer ``cv2.setNumThreads(1)`` (in a ``worker_init_fn``): OpenCV's own thread
    pool in every worker oversubscribes the cores and does not change the results.

    Args:
        root: folder of sharp photos (JPEG, PNG, …; not searched recursively).
        crop: side of the square crop, or ``(height, width)``.
        seed: base seed.
        weights: weight per kind, e.g. ``{"psf": 0.4, "homography": 0.4, "object": 0.2}``;
            missing kinds weigh 0.
        length: items per epoch; the number of photos when None.
        synthesis: :class:`SynthesisConfig` or a dict of its fields.
        degradation: :class:`~training.data.degrade.DegradationConfig`, a dict, or None (clean
            8-bit inputs).
        colour_jitter: :class:`~training.data.augment.ColourJitterConfig`, a dict, or None.
        flips: random flips, applied to both images.
        rotations: random 90° rotations, applied to both images.
        epoch: the epoch the first iteration sees (see :meth:`set_epoch`).
        cache_photos: keep decoded photos in memory (per worker process): saves the decode
            (~4 ms per 1024×576 JPEG) at ~1.7 MB per photo per worker.

    Raises:
        DatasetError: the folder holds no readable image (the glob is named).
    """

    def __init__(
        self,
        root: str | Path,
        crop: int | Sequence[int] = 256,
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        *,
        length: int | None = None,
        synthesis: SynthesisConfig | Mapping[str, Any] | None = None,
        degradation: DegradationConfig | Mapping[str, Any] | None = DEFAULT_DEGRADATION,
        colour_jitter: ColourJitterConfig | Mapping[str, Any] | None = DEFAULT_COLOUR_JITTER,
        flips: bool = True,
        rotations: bool = True,
        epoch: int = 0,
        cache_photos: bool = False,
    ) -> None:
        self.root = Path(root)
        self.photos = list_images(self.root)
        self.crop = crop_size(crop)
        self.seed, self.epoch = int(seed), int(epoch)
        self.probabilities = blur_probabilities(weights)
        self.length = len(self.photos) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"length must be ≥ 1, got {length!r}")
        self.synthesis = _config(synthesis, SynthesisConfig, "synthesis") or SynthesisConfig()
        self.degradation = _config(degradation, DegradationConfig, "degradation")
        self.colour_jitter = _config(colour_jitter, ColourJitterConfig, "colour_jitter")
        self.flips, self.rotations = flips, rotations
        self._cache: dict[int, np.ndarray] | None = {} if cache_photos else None

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose items the next iteration makes.

        Call it before creating the epoch's DataLoader iterator: workers get a copy of the
        dataset when the iterator starts, so with ``persistent_workers=True`` a later call does
        not reach them.
        """
        self.epoch = int(epoch)

    def photo(self, index: int) -> np.ndarray:
        """Photo ``index`` (of :attr:`photos`) as uint8 RGB."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = read_rgb(self.photos[index])
        if self._cache is not None:
            self._cache[index] = image
        return image

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Item ``index`` as uint8 RGB frames plus a JSON-friendly description of its making.

        Returns:
            ``(blur, sharp, meta)``; ``meta`` holds the kind, the photo's name, the extent in
            photo pixels, the drawn degradations and kind-specific details.

        Shape:
            - blur, sharp: :math:`(H, W, 3)` uint8, H×W the crop
        """
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        rng = item_rng(self.seed, self.epoch, index)
        cfg = self.synthesis
        kind = KINDS[int(rng.choice(len(KINDS), p=self.probabilities))]
        photo_index = index % len(self.photos)
        photo = self.photo(photo_index)
        jitter = sample_colour_jitter(rng, self.colour_jitter)
        degradation = sample_degradation(rng, self.degradation)
        scale = extent_scale(*photo.shape[:2], cfg.reference_size)
        extent = float(rng.uniform(*cfg.extent_px)) * scale
        meta: dict[str, Any] = {"kind": kind, "photo": self.photos[photo_index].name}
        if kind == "psf":
            blurred, sharp, detail = _psf_pair(photo, rng, self.crop, extent, cfg, jitter)
        elif kind == "homography":
            blurred, sharp, detail = _homography_pair(photo, rng, self.crop, extent, cfg, jitter)
        else:
            other_index = photo_index
            if len(self.photos) > 1:  # another photo: the object must not match its background
                other_index = (photo_index + 1 + int(rng.integers(len(self.photos) - 1))) % len(
                    self.photos
                )
            meta["object_photo"] = self.photos[other_index].name
            blurred, sharp, detail = _object_pair(
                photo, self.photo(other_index), rng, self.crop, extent, cfg, jitter
            )
        exact = self.degradation is not None and self.degradation.exact_poisson
        blur = degrade_to_uint8(blurred, rng, degradation, exact_poisson=exact)
        code = random_dihedral_code(
            rng, square=self.crop[0] == self.crop[1], flips=self.flips, rotations=self.rotations
        )
        meta.update(
            extent_px=extent,
            **detail,
            degradation=asdict(degradation),
            colour_jitter=None if jitter is None else asdict(jitter),
            dihedral=code,
        )
        return dihedral(blur, code), dihedral(sharp, code), meta

    def __getitem__(self, index: int) -> dict[str, Any]:
        blur, sharp, _ = self.sample(index)
        return {"blur": image_to_tensor(blur), "sharp": image_to_tensor(sharp)}


# --- the fixed validation set ---------------------------------------------------------------


def _validation_dataset(
    folder: str | Path,
    seed: int,
    crop: int | Sequence[int],
    per_image: int,
    weights: Mapping[str, float] | None,
    synthesis: SynthesisConfig | Mapping[str, Any] | None,
    degradation: DegradationConfig | Mapping[str, Any] | None,
) -> SyntheticBlurDataset:
    if per_image < 1:
        raise ValueError(f"per_image must be ≥ 1, got {per_image}")
    n_photos = len(list_images(folder))
    return SyntheticBlurDataset(
        folder,
        crop=crop,
        seed=seed,
        weights=weights,
        length=n_photos * per_image,
        synthesis=synthesis,
        degradation=degradation,
        colour_jitter=None,  # validation measures deblurring of the photos as they are
        flips=False,
        rotations=False,
    )


def _item_name(meta: Mapping[str, Any], index: int, n_photos: int) -> str:
    return f"{Path(meta['photo']).stem}_{index // n_photos:02d}_{meta['kind']}"


def build_validation_set(
    folder: str | Path,
    seed: int = 0,
    crop: int | Sequence[int] = 256,
    per_image: int = 2,
    *,
    weights: Mapping[str, float] | None = None,
    synthesis: SynthesisConfig | Mapping[str, Any] | None = None,
    degradation: DegradationConfig | Mapping[str, Any] | None = DEFAULT_DEGRADATION,
) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """A fixed, deterministic synthetic validation set (no colour jitter, flips or rotations).

    Every photo gets ``per_image`` items; the same arguments give the same pixels on every run
    (with the same NumPy and OpenCV versions).

    Args:
        folder: folder of sharp photos (e.g. ``photos/val``; never the training photos).
        seed: seed of the set.
        crop: crop side or ``(height, width)``.
        per_image: items per photo.
        weights: blur kinds' weights (see :class:`SyntheticBlurDataset`).
        synthesis: :class:`SynthesisConfig` or a dict.
        degradation: :class:`~training.data.degrade.DegradationConfig`, a dict, or None.

    Returns:
        ``(blur, sharp, meta)`` per item, uint8 RGB ``H × W × 3``; ``meta["name"]`` is a
        unique file stem (photo, repeat, kind).
    """
    ds = _validation_dataset(folder, seed, crop, per_image, weights, synthesis, degradation)
    items = []
    for i in range(len(ds)):
        blur, sharp, meta = ds.sample(i)
        meta["name"] = _item_name(meta, i, len(ds.photos))
        items.append((blur, sharp, meta))
    return items


_VALIDATION_MARK = "rtdeblur synthetic validation set"


def write_validation_set(
    folder: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    crop: int | Sequence[int] = 256,
    per_image: int = 2,
    *,
    weights: Mapping[str, float] | None = None,
    synthesis: SynthesisConfig | Mapping[str, Any] | None = None,
    degradation: DegradationConfig | Mapping[str, Any] | None = DEFAULT_DEGRADATION,
) -> Path:
    """Write (or reuse) the validation set as a flat paired folder for :class:`PairedFolderDataset`.

    Writes ``out_dir/blur/NAME.png``, ``out_dir/sharp/NAME.png`` and ``out_dir/meta.json``
    (settings and per-item descriptions). When ``out_dir`` already holds a set made with the
    same settings and photos, nothing is written. The set is built in a temporary sibling
    folder and renamed into place, so an interrupted run never leaves a partial set under
    ``out_dir``. A stale set we wrote is replaced; any other existing ``out_dir`` is an error.

    Args:
        folder: folder of sharp photos.
        out_dir: destination folder.
        seed: see :func:`build_validation_set`.
        crop: see :func:`build_validation_set`.
        per_image: see :func:`build_validation_set`.
        weights: see :func:`build_validation_set`.
        synthesis: see :func:`build_validation_set`.
        degradation: see :func:`build_validation_set`.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileExistsError: ``out_dir`` exists and is not a validation set written here.
    """
    ds = _validation_dataset(folder, seed, crop, per_image, weights, synthesis, degradation)
    return write_pair_set(
        ds,
        out_dir,
        _VALIDATION_MARK,
        _set_settings(ds, per_image=int(per_image)),
        functools.partial(_item_name, n_photos=len(ds.photos)),
    )


def _set_settings(ds: SyntheticBlurDataset, **extra: Any) -> dict[str, Any]:
    """What a written set's pixels depend on: a set with other settings is rebuilt."""
    return {
        "photos": [[p.name, p.stat().st_size] for p in ds.photos],  # a changed photo rebuilds
        "seed": ds.seed,
        "crop": list(ds.crop),
        **extra,
        "weights": dict(zip(KINDS, ds.probabilities.tolist(), strict=True)),
        "synthesis": asdict(ds.synthesis),
        "degradation": None if ds.degradation is None else asdict(ds.degradation),
        "colour_jitter": None if ds.colour_jitter is None else asdict(ds.colour_jitter),
        "flips": ds.flips,
        "rotations": ds.rotations,
        # Other versions can change pixels (interpolation, JPEG): rebuild rather than mix.
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


# --- the pre-synthesised training pool ------------------------------------------------------

_POOL_MARK = "rtdeblur synthetic training pool"


def _pool_name(meta: Mapping[str, Any], index: int) -> str:
    return f"{index:06d}"


def pool_dataset(
    folder: str | Path, count: int, crop: int | Sequence[int], seed: int = 0, **options: Any
) -> SyntheticBlurDataset:
    """The :class:`SyntheticBlurDataset` whose first ``count`` items (epoch 0) form a pool.

    Args:
        folder: folder of sharp photos.
        count: items in the pool (item ``i`` uses photo ``i mod N``).
        crop: side (or ``(height, width)``) of the stored crops.
        seed: seed of the pool.
        **options: the other :class:`SyntheticBlurDataset` arguments (weights, synthesis,
            degradation, colour_jitter, flips, rotations).
    """
    if int(count) < 1:
        raise ValueError(f"a pool needs at least 1 item, got {count!r}")
    return SyntheticBlurDataset(
        folder, crop=crop, seed=seed, length=int(count), cache_photos=True, **options
    )


def pool_settings(ds: SyntheticBlurDataset) -> dict[str, Any]:
    """The settings a pool made from ``ds`` records (and is reused for)."""
    return json.loads(json.dumps(_set_settings(ds, count=len(ds))))


def write_training_pool(
    ds: SyntheticBlurDataset,
    out_dir: str | Path,
    *,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Synthesise every item of ``ds`` once and store it as a flat paired folder.

    Training on such a pool (:class:`~training.data.paired.PairedFolderDataset` with a smaller
    random crop) skips the synthesis in the training loop, which on a small CPU costs as much
    as the training step of a light network; a pool is also a compact, pre-cropped set to move
    to another machine. Item ``i`` is :meth:`SyntheticBlurDataset.sample` ``(i)`` at epoch 0,
    stored as ``blur/NNNNNN.png`` and ``sharp/NNNNNN.png``; ``meta.json`` holds the settings
    and every item's description. An identical pool already there is reused.

    Args:
        ds: the dataset (see :func:`pool_dataset`).
        out_dir: destination folder.
        workers: processes that synthesise in parallel.
        progress: called as ``progress(done, total)``.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileExistsError: ``out_dir`` exists and is not a pool written here.
    """
    ds.set_epoch(0)
    return write_pair_set(
        ds, out_dir, _POOL_MARK, pool_settings(ds), _pool_name, workers=workers, progress=progress
    )


# --- camera shake for whole clips -----------------------------------------------------------


def _shake_process(
    rng: np.random.Generator, axis_weights: np.ndarray, frequencies_hz: tuple[float, float], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitudes, frequencies and phases of a smooth random 6-D shake (``n`` sines per axis)."""
    freq = np.exp(rng.uniform(*np.log(frequencies_hz), (6, n)))
    phase = rng.uniform(0.0, 2.0 * math.pi, (6, n))
    # 1/f amplitudes: slow sway dominates the position, faster tremor still shows in the speed.
    amp = rng.uniform(0.5, 1.0, (6, n)) / freq * axis_weights[:, None]
    return amp, freq, phase


def blur_video(
    frames: Iterable[np.ndarray],
    seed: int = 0,
    max_extent_px: float = 20.0,
    *,
    fps: float = 25.0,
    exposure: float = 0.5,
    typical_fraction: float = 0.6,
    spatially_varying: bool = True,
    fov_degrees: float = 60.0,
    frequencies_hz: tuple[float, float] = (0.4, 6.0),
    subframe_step_px: float = 1.0,
    max_subframes: int = 48,
) -> Iterator[np.ndarray]:
    """Apply temporally coherent camera-shake blur to a clip, frame by frame.

    One long, smooth random camera path (sums of sines per axis: yaw, pitch, roll, shifts,
    zoom) runs through the whole clip; each frame is the average, in linear light, of its
    sub-frames warped along the stretch of the path its shutter was open for. The blur's
    length and direction therefore drift smoothly from frame to frame, as a handheld camera's
    do. Each frame's sub-frames are taken relative to their own centre pose, so frames do not
    jump about: only the blur changes.

    Extents are limited softly: a stretch whose blur would exceed ``max_extent_px`` is scaled
    by ``tanh``, which keeps the change smooth.

    Args:
        frames: uint8 RGB frames, all the same size.
        seed: seed of the camera path.
        max_extent_px: the largest blur extent in pixels of these frames.
        fps: the clip's frame rate (sets how fast the shake evolves between frames).
        exposure: shutter-open fraction of each frame interval (0.5 is a 180° shutter).
        typical_fraction: typical blur extent as a fraction of ``max_extent_px``.
        spatially_varying: include roll and zoom, whose blur grows towards the corners; without
            them the blur is nearly the same everywhere.
        fov_degrees: diagonal field of view of the camera model.
        frequencies_hz: range of the shake's frequencies.
        subframe_step_px: wanted largest motion between sub-frames.
        max_subframes: the most sub-frames per frame.

    Yields:
        Blurred uint8 RGB frames of the input's size.
    """
    if not 0.0 < exposure <= 1.0 or fps <= 0 or max_extent_px < 0:
        raise ValueError("need 0 < exposure ≤ 1, fps > 0 and max_extent_px ≥ 0")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    # Relative sizes of yaw, pitch, roll, shift x, shift y and zoom, in pixel-equivalents.
    roll, zoom = (0.6, 0.15) if spatially_varying else (0.0, 0.0)
    axis_weights = np.array([1.0, 1.0, roll, 0.2, 0.2, zoom])
    amp, freq, phase = _shake_process(rng, axis_weights, frequencies_hz, 8)
    # Scale so that the RMS image speed times the exposure time is the typical extent.
    rms_speed = math.sqrt(float(((amp * 2 * math.pi * freq) ** 2).sum()) / 2.0)
    shutter_s = exposure / fps
    amp *= typical_fraction * max_extent_px / (rms_speed * shutter_s) if max_extent_px else 0.0

    size = None
    for k, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"frame {k}: expected uint8 (H, W, 3), got {frame.dtype} {frame.shape}"
            )
        if size is None:
            size = h, w = frame.shape[:2]
            camera = (
                focal_length_px(w, h, fov_degrees),
                ((w - 1) / 2, (h - 1) / 2),
                math.hypot(w, h) / 2,
            )
            points = window_points(0, 0, w, h)
        elif frame.shape[:2] != size:
            raise ValueError(f"frame {k} is {frame.shape[:2]}, the first frame {size}")
        if max_extent_px == 0:
            yield frame.copy()
            continue
        t = k / fps + np.linspace(0.0, shutter_s, 64)
        path = (amp * np.sin(2 * math.pi * freq * t[:, None, None] + phase)).sum(-1)  # (64, 6)
        path -= path[0]
        homs = camera_path_homographies(path, *camera)
        extent = displacement_extent(relative_to_centre(homs, points)[0], points)
        if extent > 1e-6:
            path *= max_extent_px * math.tanh(extent / max_extent_px) / extent
        homs, weights = camera_shake_homographies(
            path, points, *camera, step_px=subframe_step_px, max_subframes=max_subframes
        )
        blurred = average_warped_subframes(srgb_uint8_to_linear(frame), homs, size, weights)
        yield linear_to_srgb_uint8(blurred)


__all__ = [
    "DEFAULT_WEIGHTS",
    "KINDS",
    "DatasetError",
    "SynthesisConfig",
    "SyntheticBlurDataset",
    "blur_probabilities",
    "blur_video",
    "build_validation_set",
    "extent_scale",
    "write_validation_set",
]
