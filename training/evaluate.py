"""Measuring deblurring: PSNR, SSIM and LPIPS of outputs and inputs against sharp images.

Shared by the trainer's validation, ``rtdeblur export`` (the metrics in the model card) and
``rtdeblur eval``. Images are uint8 RGB frames (the engine's contract); a *restorer* maps a
uint8 NHWC batch to a uint8 NHWC batch — a PyTorch network (:class:`TorchRestorer`, same
pre- and post-processing as the engine's backends) or an engine backend
(:class:`BackendRestorer`). The input's metrics are reported beside the output's, so the
gain is visible: a network that learned nothing scores the input's numbers.

PSNR and SSIM come from :mod:`engine.metrics` (scikit-image's definitions, on 0…255 values);
LPIPS is the VGG variant of :mod:`engine.models.lpips` on [0, 1] images (lower is better).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import metrics
from engine.pipeline.convert import FrameConverter
from training.config import VALIDATION_SEED
from training.data.paired import DatasetError, PairedFolderDataset, find_pairs, list_images

#: A (name, blurred, sharp) triple of uint8 RGB frames of one size.
Pair = tuple[str, np.ndarray, np.ndarray]
#: uint8 NHWC batch → uint8 NHWC batch of the same shape.
Restorer = Callable[[np.ndarray], np.ndarray]

#: The fixed synthetic validation blur (what the recipes' ``data.val`` section defaults to).
VALIDATION_DEFAULTS: dict[str, Any] = {
    "seed": VALIDATION_SEED,
    "crop": 256,
    "per_image": 1,
    "weights": None,
    "synthesis": None,
    "degradation": {},
}

#: Crops per photo of the set model cards and ``rtdeblur eval`` report on. The recipes validate
#: on one crop per photo (cheap enough to run every few hundred steps, and what checkpoints are
#: chosen by); with 19 photos that mean moves by a few tenths of a dB from one draw of the blur
#: to the next, so reported numbers average 8 draws per photo of the same generator (the first
#: draw of each photo is the selection set's).
REPORT_PER_IMAGE = 8


def synthetic_items(
    root: str | os.PathLike,
    seed: int = VALIDATION_SEED,
    crop: int | Sequence[int] = 256,
    per_image: int = 1,
    limit: int | None = None,
    weights: Mapping[str, float] | None = None,
    synthesis: Mapping[str, Any] | None = None,
    degradation: Mapping[str, Any] | None = None,
) -> list[tuple[Pair, dict[str, Any]]]:
    """The fixed synthetic validation set of a folder of sharp photos, with how each was made.

    Deterministic: the same folder and settings give the same pixels on every run (see
    :func:`training.data.build_validation_set`).

    Args:
        root: folder of sharp photos.
        seed: the set's seed.
        crop: crop side or ``(height, width)``.
        per_image: items per photo.
        limit: keep the first ``limit`` items only.
        weights: blur kinds' weights (None: the defaults).
        synthesis: synthesis options (None: the defaults).
        degradation: input degradations (``{}``: the defaults, None: clean 8-bit input).

    Returns:
        ``((name, blur, sharp), meta)`` per item; ``meta`` holds the blur kind, its extent in
        pixels of the photo and the rest of :meth:`SyntheticBlurDataset.sample`'s description.

    Raises:
        DatasetError: no readable photo in ``root``.
    """
    from training.data import build_validation_set

    items = build_validation_set(
        root,
        seed=seed,
        crop=crop,
        per_image=per_image,
        weights=weights,
        synthesis=synthesis,
        degradation=degradation,
    )
    if limit is not None:
        items = items[:limit]
    return [((meta["name"], blur, sharp), meta) for blur, sharp, meta in items]


def paired_pairs(
    root: str | os.PathLike, limit: int | None = None, crop: int | None = None
) -> list[Pair]:
    """Pairs of a paired folder (GoPro or flat layout), whole or centre-cropped.

    Args:
        root: the dataset folder.
        limit: keep the first ``limit`` pairs.
        crop: centre crop side (None: whole images).

    Raises:
        DatasetError: see :class:`training.data.PairedFolderDataset`.
    """
    ds = PairedFolderDataset(root, crop=None)
    n = len(ds) if limit is None else min(limit, len(ds))
    out = []
    for i in range(n):
        blur, sharp = ds.load_pair(i)
        if crop is not None:
            blur, sharp = _centre_crop(blur, crop), _centre_crop(sharp, crop)
        out.append((Path(ds.name(i)).with_suffix("").as_posix(), blur, sharp))
    return out


def _centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = min(side, h), min(side, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[top : top + ch, left : left + cw])


def validation_pairs(section: Mapping[str, Any]) -> list[Pair]:
    """The validation pairs a recipe's ``data.val`` section describes.

    Args:
        section: ``type`` (``synthetic`` or ``paired``), ``root``, ``limit`` and, for
            synthetic sets, ``seed``, ``crop``, ``per_image``, ``weights``, ``synthesis``,
            ``degradation``; for paired sets ``crop`` is a centre crop (or null).

    Returns:
        The pairs.
    """
    if section.get("type", "synthetic") == "paired":
        return paired_pairs(section["root"], section.get("limit"), section.get("crop"))
    items = synthetic_items(
        section["root"],
        seed=int(section.get("seed", VALIDATION_SEED)),
        crop=section.get("crop", 256),
        per_image=int(section.get("per_image", 1)),
        limit=section.get("limit"),
        weights=section.get("weights"),
        synthesis=section.get("synthesis"),
        degradation=section.get("degradation", {}),
    )
    return [pair for pair, _ in items]


def folder_pairs(
    root: str | os.PathLike,
    limit: int | None = None,
    crop: int = 256,
    seed: int = VALIDATION_SEED,
    per_image: int = REPORT_PER_IMAGE,
) -> tuple[list[Pair], str, list[dict[str, Any]] | None]:
    """Pairs from a folder: a paired dataset if it has one, else synthetic blur of its photos.

    Sharp photos get the recipes' validation blur (:data:`VALIDATION_DEFAULTS`: the same blur
    kinds, extents, sensor noise and JPEG as training and the model cards), ``per_image``
    draws per photo.

    Args:
        root: a paired folder (``blur/`` + ``sharp/``, flat or per sequence) or a folder of
            sharp photos.
        limit: keep the first ``limit`` pairs.
        crop: crop side of the synthetic set (paired images are used whole).
        seed: seed of the synthetic set.
        per_image: synthetic pairs per photo.

    Returns:
        The pairs, a one-line description of what they are, and for synthetic pairs how each
        was made (see :func:`synthetic_items`; None for a paired folder).

    Raises:
        DatasetError: neither layout fits, with both reasons.
        ValueError: ``per_image`` below 1.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data folder not found: {root}")
    try:
        find_pairs(root)
    except DatasetError as paired_error:
        try:
            list_images(root)
        except DatasetError:
            raise DatasetError(
                f"{root} is neither a paired folder ({paired_error}) nor a folder of sharp "
                "photos (no images directly inside)"
            ) from None
        section = {**VALIDATION_DEFAULTS, "seed": seed, "crop": crop, "per_image": per_image}
        items = synthetic_items(root, limit=limit, **section)
        text = f"{synthetic_description(section)} of photos in {root}"
        return [pair for pair, _ in items], text, [meta for _, meta in items]
    return paired_pairs(root, limit), f"paired folder {root}", None


def synthetic_description(section: Mapping[str, Any]) -> str:
    """How a synthetic validation section makes its pairs, in a few words (for tables and cards).

    Args:
        section: ``seed``, ``crop``, ``per_image`` and ``degradation`` as in a recipe's
            ``data.val``.
    """
    crop = section.get("crop", 256)
    side = f"{crop}×{crop}" if isinstance(crop, int) else "×".join(str(c) for c in crop)
    n = int(section.get("per_image", 1))
    per = "1 crop per photo" if n == 1 else f"{n} crops per photo"
    noise = "" if section.get("degradation", {}) is not None else ", clean 8-bit input"
    return f"synthetic blur (seed {section.get('seed', VALIDATION_SEED)}, {side}, {per}{noise})"


# --- restorers ------------------------------------------------------------------------------


class TorchRestorer:
    """Runs a PyTorch network of the zoo on uint8 frames, as the engine's backends do.

    Pre- and post-processing are the engine's :class:`~engine.pipeline.convert.FrameConverter`
    (scale to the model's range; clamp, round half to even, uint8); the network pads to its
    multiple itself. Runs in eval mode, in float32, without gradients.

    Args:
        model: the network.
        input_range: its value range ``(low, high)``.
        device: where it runs (the network is not moved).
    """

    def __init__(self, model: Any, input_range: Sequence[float], device: Any = "cpu") -> None:
        self.model = model
        self.device = device
        self.converter = FrameConverter((float(input_range[0]), float(input_range[1])), 1)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Restore a batch.

        Shape:
            - frames: :math:`(N, H, W, 3)` uint8; output: same
        """
        import torch

        from training.losses import final_output

        was_training = self.model.training
        self.model.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(self.converter.to_input(frames)))
            with torch.no_grad():
                y = final_output(self.model(x.to(self.device))).float()
            return self.converter.to_frames(y.cpu().numpy()).copy()
        finally:
            self.model.train(was_training)


class BackendRestorer:
    """An engine backend (``infer`` on uint8 NHWC) as a restorer; outputs are copied, since
    backends reuse their buffers."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Restore a batch (copied out of the backend's buffer)."""
        return np.array(self.backend.infer(np.ascontiguousarray(frames)), copy=True)


def load_lpips(device: Any = "cpu") -> tuple[Any, str | None]:
    """The LPIPS metric, or None and the reason when its weights are not installed.

    Returns:
        ``(lpips_module_or_None, message_or_None)``.
    """
    from engine.assets import AssetNotFoundError
    from engine.models.lpips import LPIPS

    try:
        return LPIPS().to(device), None
    except (AssetNotFoundError, ValueError) as exc:
        return None, f"LPIPS skipped: {exc}"


# --- the measurements -----------------------------------------------------------------------


@dataclass
class EvalRow:
    """Metrics of one image: the output's and the input's, against the sharp image."""

    name: str
    psnr_in: float
    psnr_out: float
    ssim_in: float
    ssim_out: float
    lpips_in: float | None = None
    lpips_out: float | None = None


@dataclass
class EvalReport:
    """Per-image rows and their means."""

    rows: list[EvalRow] = field(default_factory=list)

    def mean(self) -> dict[str, float | None]:
        """Mean of every metric over the images (None where a metric was not measured)."""
        out: dict[str, float | None] = {}
        for key in ("psnr_in", "psnr_out", "ssim_in", "ssim_out", "lpips_in", "lpips_out"):
            values = [getattr(r, key) for r in self.rows]
            out[key] = None if not values or None in values else float(np.mean(values))
        return out

    def summary(self) -> dict[str, Any]:
        """Means with the gains, in the names the model card and the log use.

        Returns:
            ``psnr``, ``ssim``, ``lpips`` (output), ``psnr_input``, ``ssim_input``,
            ``lpips_input``, ``psnr_gain``, ``ssim_gain``, ``lpips_gain`` (input − output:
            positive is better for all three), ``psnr_gain_se`` (standard error of the mean
            PSNR gain: the spread of the per-image gains over √images; None below 2 images or
            when a PSNR is infinite) and ``images``.
        """
        m = self.mean()
        se = standard_error([r.psnr_out - r.psnr_in for r in self.rows])

        def gain(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a - b

        return {
            "psnr": m["psnr_out"],
            "ssim": m["ssim_out"],
            "lpips": m["lpips_out"],
            "psnr_input": m["psnr_in"],
            "ssim_input": m["ssim_in"],
            "lpips_input": m["lpips_in"],
            "psnr_gain": gain(m["psnr_out"], m["psnr_in"]),
            "ssim_gain": gain(m["ssim_out"], m["ssim_in"]),
            "lpips_gain": gain(m["lpips_in"], m["lpips_out"]),
            "psnr_gain_se": se,
            "images": len(self.rows),
        }

    def cost_against(self, reference: EvalReport) -> dict[str, Any]:
        """How much lower this report's output PSNR is than ``reference``'s on the same images.

        Returns:
            ``psnr_cost`` (mean of reference − this, dB), ``psnr_cost_se`` (its standard
            error, None as for :meth:`summary`), ``psnr_cost_worst`` (the largest per-image
            loss) and ``images``.

        Raises:
            ValueError: the reports are not of the same images.
        """
        if [r.name for r in self.rows] != [r.name for r in reference.rows]:
            raise ValueError("the reports are not of the same images")
        pairs = zip(self.rows, reference.rows, strict=True)
        costs = [ref.psnr_out - own.psnr_out for own, ref in pairs]
        return {
            "psnr_cost": float(np.mean(costs)) if costs else None,
            "psnr_cost_se": standard_error(costs),
            "psnr_cost_worst": float(max(costs)) if costs else None,
            "images": len(costs),
        }


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean of ``values``: their spread (ddof 1) over √n; None below
    two values or when one is not finite (an infinite PSNR)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or not np.isfinite(v).all():
        return None
    return float(v.std(ddof=1) / math.sqrt(len(v)))


def _lpips_values(lpips: Any, a: np.ndarray, b: np.ndarray) -> list[float]:
    import torch

    device = next(lpips.parameters()).device

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float() / 255.0

    with torch.no_grad():
        return [float(v) for v in lpips(tensor(a), tensor(b)).cpu()]


class Evaluator:
    """Measures restorers on a fixed list of pairs; the inputs' metrics are computed once.

    Args:
        pairs: ``(name, blur, sharp)`` uint8 frames.
        lpips: an LPIPS module (see :func:`load_lpips`) or None to skip LPIPS.
        batch_size: images per restorer call (pairs of one size are batched together).
    """

    def __init__(self, pairs: Sequence[Pair], lpips: Any = None, batch_size: int = 8) -> None:
        if not pairs:
            raise ValueError("no image pairs to evaluate")
        self.pairs = list(pairs)
        self.lpips = lpips
        self.batch_size = max(1, int(batch_size))
        self._input_rows: list[tuple[float, float, float | None]] | None = None

    def _batches(self) -> list[list[int]]:
        batches: list[list[int]] = []
        for i, (_, blur, _) in enumerate(self.pairs):
            last = batches[-1] if batches else None
            same = last is not None and self.pairs[last[0]][1].shape == blur.shape
            if same and len(last) < self.batch_size:
                last.append(i)
            else:
                batches.append([i])
        return batches

    def _measure(self, outputs: np.ndarray, indices: list[int]) -> list[tuple]:
        sharp = np.stack([self.pairs[i][2] for i in indices])
        values = [
            (metrics.psnr(s, o), metrics.ssim(s, o)) for s, o in zip(sharp, outputs, strict=True)
        ]
        lp: list[float | None] = [None] * len(indices)
        if self.lpips is not None:
            lp = _lpips_values(self.lpips, outputs, sharp)
        return [(p, s, q) for (p, s), q in zip(values, lp, strict=True)]

    def input_metrics(self) -> list[tuple[float, float, float | None]]:
        """``(psnr, ssim, lpips)`` of every blurred input (computed once)."""
        if self._input_rows is None:
            rows: list[tuple] = []
            for idx in self._batches():
                rows += self._measure(np.stack([self.pairs[i][1] for i in idx]), idx)
            self._input_rows = rows
        return self._input_rows

    def run(self, restore: Restorer) -> EvalReport:
        """Restore every input and measure output and input against the sharp image.

        Args:
            restore: uint8 NHWC → uint8 NHWC.

        Returns:
            The report, one row per pair in order.
        """
        inputs = self.input_metrics()
        report = EvalReport()
        for idx in self._batches():
            frames = np.stack([self.pairs[i][1] for i in idx])
            outputs = restore(frames)
            if outputs.shape != frames.shape or outputs.dtype != np.uint8:
                raise ValueError(
                    f"the model returned {outputs.dtype} {outputs.shape} for {frames.shape} uint8"
                )
            for i, (p, s, q) in zip(idx, self._measure(outputs, idx), strict=True):
                pin, sin, qin = inputs[i]
                report.rows.append(EvalRow(self.pairs[i][0], pin, p, sin, s, qin, q))
        return report


# --- text and CSV ---------------------------------------------------------------------------

_COLUMNS = (
    ("image", "name", "{}"),
    ("PSNR in", "psnr_in", "{:.2f}"),
    ("PSNR out", "psnr_out", "{:.2f}"),
    ("gain", None, "{:+.2f}"),
    ("SSIM in", "ssim_in", "{:.4f}"),
    ("SSIM out", "ssim_out", "{:.4f}"),
    ("LPIPS in", "lpips_in", "{:.4f}"),
    ("LPIPS out", "lpips_out", "{:.4f}"),
)


def _cell(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def format_table(report: EvalReport) -> str:
    """Per-image rows and the mean as an aligned text table (PSNR in dB)."""
    rows = [asdict(r) for r in report.rows]
    mean = {"name": "mean", **report.mean()}
    lines = []
    for r in [*rows, mean]:
        gain = None
        if r["psnr_out"] is not None and r["psnr_in"] is not None:
            gain = r["psnr_out"] - r["psnr_in"]
        lines.append([_cell(fmt, gain if key is None else r[key]) for _, key, fmt in _COLUMNS])
    (header, *body), widths = _aligned([[title for title, _, _ in _COLUMNS], *lines])
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([header, rule, *body[:-1], rule, body[-1]])


def _aligned(lines: list[list[str]]) -> tuple[list[str], list[int]]:
    """Text lines of a table (first column left-aligned, the others right) and column widths."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(
            [
                cells[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)),
            ]
        )
        for cells in lines
    ], widths


def plus_minus(se: float | None) -> str:
    """`` ± 0.07`` for a standard error, nothing without one (cards written before it was kept)."""
    return "" if se is None else f" ± {se:.2f}"


#: Upper edges of the extent groups of :func:`blur_groups`, in pixels of the photo.
EXTENT_EDGES_PX = (4.0, 8.0, 16.0)


def blur_groups(metas: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Indices of synthetic items by blur kind, then by blur extent.

    Args:
        metas: one description per item (see :func:`synthetic_items`), in the report's order.

    Returns:
        Group label → item indices: one group per kind present (in order of appearance), then
        one per extent range present (``extent < 4 px``, ``extent 4–8 px``, …, in pixels of
        the photo).
    """
    groups: dict[str, list[int]] = {}
    for i, meta in enumerate(metas):
        groups.setdefault(str(meta["kind"]), []).append(i)
    edges = (0.0, *EXTENT_EDGES_PX)
    labels = [f"extent {lo:g}–{hi:g} px" for lo, hi in itertools.pairwise(edges)]
    labels[0] = f"extent < {edges[1]:g} px"
    labels.append(f"extent ≥ {edges[-1]:g} px")
    by_extent: dict[str, list[int]] = {label: [] for label in labels}
    for i, meta in enumerate(metas):
        k = int(np.searchsorted(EXTENT_EDGES_PX, float(meta["extent_px"]), side="right"))
        by_extent[labels[k]].append(i)
    groups.update((label, idx) for label, idx in by_extent.items() if idx)
    return groups


def format_groups(report: EvalReport, groups: Mapping[str, Sequence[int]]) -> str:
    """Mean input PSNR, mean gain and its standard error per group, as an aligned table."""
    header = ["group", "images", "PSNR in", "gain", "± se"]
    lines = []
    for label, idx in groups.items():
        m = EvalReport([report.rows[i] for i in idx]).summary()
        lines.append(
            [
                label,
                str(m["images"]),
                _cell("{:.2f}", m["psnr_input"]),
                _cell("{:+.2f}", m["psnr_gain"]),
                _cell("{:.2f}", m["psnr_gain_se"]),
            ]
        )
    return "\n".join(_aligned([header, *lines])[0])


def write_csv(report: EvalReport, path: str | os.PathLike) -> Path:
    """Write one row per image and a final ``mean`` row (empty cells for unmeasured LPIPS).

    The file is written under a temporary name and renamed when complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [key for _, key, _ in _COLUMNS if key is not None]
    fields.insert(3, "psnr_gain")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in [*(asdict(r) for r in report.rows), {"name": "mean", **report.mean()}]:
            gain = None
            if r["psnr_out"] is not None and r["psnr_in"] is not None:
                gain = r["psnr_out"] - r["psnr_in"]
            row = {**{k: r.get(k) for k in fields if k != "psnr_gain"}, "psnr_gain": gain}
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    os.replace(tmp, path)
    return path


# --- networks from training checkpoints ------------------------------------------------------

#: Model keyword arguments that only say where initial weights come from: they do not change
#: the network, and a trained checkpoint replaces those weights anyway.
INIT_ONLY_KWARGS = ("backbone_weights",)


def structural_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model keyword arguments that shape the network (``INIT_ONLY_KWARGS`` dropped)."""
    return {k: v for k, v in (kwargs or {}).items() if k not in INIT_ONLY_KWARGS}


def model_from_checkpoint(
    checkpoint: Mapping[str, Any], ema: bool | None = None
) -> tuple[Any, Any, bool]:
    """Rebuild the trained network of a checkpoint, with its final output only.

    Args:
        checkpoint: what :func:`training.checkpoint.load_checkpoint` returned.
        ema: True: the EMA weights (an error if there are none); False: the raw weights;
            None: the EMA weights when the checkpoint has them.

    Returns:
        ``(model, spec, used_ema)``: the network in eval mode on the CPU, its
        :class:`~engine.models.ModelSpec`, and whether the EMA weights were loaded.

    Raises:
        ValueError: ``ema=True`` and the checkpoint holds no EMA weights.
    """
    from engine.models import create_model, get_spec

    config = checkpoint["config"]
    name = config["model"]["name"]
    spec = get_spec(name)
    model = create_model(name, **structural_kwargs(config["model"].get("kwargs")))
    has_ema = checkpoint.get("ema") is not None
    if ema and not has_ema:
        raise ValueError("the checkpoint has no EMA weights (train.ema was off); use --no-ema")
    use_ema = has_ema if ema is None else bool(ema)
    if not use_ema and checkpoint.get("model") is None:
        raise ValueError("the checkpoint keeps only its EMA weights (slimmed); use --ema")
    state = checkpoint["ema"]["module"] if use_ema else checkpoint["model"]
    model.load_state_dict(state)
    model.eval()
    return model, spec, use_ema
