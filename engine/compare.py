"""Quality comparison of deblurring models on a clip: per-frame metrics, summary, CSV, plots, HTML.

Two modes:

* **paired** — the blurred input has a sharp reference: every frame of the input and of each
  model's output is scored against the reference frame with PSNR and SSIM
  (:mod:`engine.metrics`, equal to scikit-image's).
* **unpaired** — no reference: every frame is scored with no-reference sharpness measures
  (variance of the Laplacian, gradient energy, Haar-wavelet blur extent) and with temporal
  flicker (mean absolute difference to the previous frame of the same subject).

The work is streamed: :class:`Comparison` takes one frame (input, outputs, reference) at a
time, keeps only the numbers and the crops of the current best and worst frame, and drops
the pixels, so memory stays flat on long clips. :func:`run_comparison` drives it from frame
sources and backends; the app's Compare panel drives it frame by frame from its own thread.

Reports (:func:`write_report`): ``metrics.csv`` (one row per frame), PNG plots (matplotlib,
imported only when plots are written; without it the plots are skipped and the report says
so) and a self-contained ``report.html``. Every file is written atomically.

Frame-count mismatch (paired mode): the common prefix is compared and a warning is recorded
in :attr:`ComparisonResult.warnings`; a size mismatch is an error (:class:`CompareError`).

This module is part of the engine core: no torch, no Qt.
"""

from __future__ import annotations

import base64
import csv
import html
import importlib
import io
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from engine.atomic import atomic_output
from engine.metrics import psnr, ssim
from engine.video.sources import FileSource, ImageFolderSource, SourceError

INPUT = "input"
"""Name of the unprocessed input among the compared subjects."""

CROP_SIZE = 192
"""Side of the square crop (pixels, before the frame's own size caps it) shown in reports."""


class CompareError(Exception):
    """A comparison cannot run (bad input, mismatched sizes); the message is for the user."""


# -- metrics -------------------------------------------------------------------------------


class FrameMetric(Protocol):
    """A per-frame score.

    Attributes:
        name: short column name (``psnr``).
        label: name shown in tables and plots.
        higher_is_better: whether a larger value means better quality.
        paired: whether it needs a reference frame.
    """

    name: str
    label: str
    higher_is_better: bool
    paired: bool

    def __call__(self, frame: np.ndarray, reference: np.ndarray | None) -> float:
        """Score ``frame`` (against ``reference`` for paired metrics)."""
        ...


@dataclass(frozen=True)
class FunctionMetric:
    """A :class:`FrameMetric` made of a plain function.

    Attributes:
        name: column name.
        label: display name.
        higher_is_better: direction of quality.
        paired: ``fn(frame, reference)`` when true, ``fn(frame)`` otherwise.
        fn: the function.
    """

    name: str
    label: str
    higher_is_better: bool
    paired: bool
    fn: Callable[..., float]

    def __call__(self, frame: np.ndarray, reference: np.ndarray | None) -> float:
        """Score ``frame``."""
        if self.paired:
            if reference is None:
                raise ValueError(f"metric {self.name} needs a reference frame")
            return float(self.fn(reference, frame))
        return float(self.fn(frame))


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame.astype(np.float32)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def laplacian_variance(frame: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher: sharper).

    Shape:
        - frame: :math:`(H, W, 3)` RGB or :math:`(H, W)`, uint8
    """
    return float(cv2.Laplacian(_gray(frame), cv2.CV_32F, ksize=3).var())


def gradient_energy(frame: np.ndarray) -> float:
    """Mean squared 3×3 Sobel gradient magnitude of the grey image (higher: sharper)."""
    g = _gray(frame)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def _haar_level(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D Haar step (orthonormal, as PyWavelets' ``haar``): (approximation, edge map)."""
    a, b = x[0::2, 0::2], x[0::2, 1::2]
    c, d = x[1::2, 0::2], x[1::2, 1::2]
    ll = (a + b + c + d) / 2.0
    lh = (a + b - c - d) / 2.0
    hl = (a - b + c - d) / 2.0
    hh = (a - b - c + d) / 2.0
    return ll, np.sqrt(lh * lh + hl * hl + hh * hh)


def _block_max(x: np.ndarray, block: int) -> np.ndarray:
    h, w = x.shape[0] // block, x.shape[1] // block
    return x[: h * block, : w * block].reshape(h, block, w, block).max(axis=(1, 3))


def blur_extent(frame: np.ndarray, threshold: float = 35.0) -> float:
    """Haar-wavelet blur extent of Tong, Li, Zhang and Zhang (ICME 2004); higher: blurrier.

    Three Haar levels give edge maps at 1/2, 1/4 and 1/8 resolution; each is max-pooled over
    windows of 8, 4 and 2 so all three describe the same 16×16-pixel cells. A cell is an edge
    where any level exceeds ``threshold``. Edges whose strength grows with the scale
    (roof and gradual-step edges) are the ones blur creates or widens; those among them whose
    finest level is weak (below ``threshold``) have lost their sharpness. The blur extent is
    that share: blurred roof/gradual edges over all roof/gradual edges, in [0, 1].

    An image without roof/gradual edges but with other edges scores 0 (sharp); one without
    any edge at all (flat, or blurred beyond recognition) scores 1.

    Args:
        frame: RGB or grey uint8 image, at least 16×16.
        threshold: edge strength threshold on the 0-255 grey scale (the paper's 35).
    """
    g = _gray(frame).astype(np.float64)
    h, w = (g.shape[0] // 16) * 16, (g.shape[1] // 16) * 16
    if h == 0 or w == 0:
        raise ValueError(f"blur extent needs an image of at least 16×16, got {frame.shape}")
    x = g[:h, :w]
    maps = []
    for block in (8, 4, 2):
        x, edges = _haar_level(x)
        maps.append(_block_max(edges, block))
    e1, e2, e3 = maps
    edge = (e1 > threshold) | (e2 > threshold) | (e3 > threshold)
    roof_or_gstep = edge & (((e1 < e2) & (e2 < e3)) | ((e2 > e1) & (e2 > e3)))
    blurred = roof_or_gstep & (e1 < threshold)
    n_rg = int(roof_or_gstep.sum())
    if n_rg == 0:
        return 0.0 if edge.any() else 1.0
    return float(blurred.sum()) / n_rg


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames, in grey levels (the flicker measure)."""
    return float(cv2.absdiff(a, b).mean())


PSNR = FunctionMetric("psnr", "PSNR (dB)", True, True, psnr)
SSIM = FunctionMetric("ssim", "SSIM", True, True, ssim)
LAPLACIAN = FunctionMetric("laplacian_var", "Laplacian variance", True, False, laplacian_variance)
GRADIENT = FunctionMetric("gradient_energy", "Gradient energy", True, False, gradient_energy)
BLUR_EXTENT = FunctionMetric("blur_extent", "Blur extent (Tong)", False, False, blur_extent)

PAIRED_METRICS: tuple[FrameMetric, ...] = (PSNR, SSIM)
UNPAIRED_METRICS: tuple[FrameMetric, ...] = (LAPLACIAN, GRADIENT, BLUR_EXTENT)
FLICKER = "flicker"
"""Column of the temporal flicker (unpaired mode): |frame − previous frame| mean, per subject."""


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    """What a result column means (``flicker`` included, which is not a :class:`FrameMetric`)."""

    name: str
    label: str
    higher_is_better: bool


@dataclass
class FrameResult:
    """The scores of one frame.

    Attributes:
        index: frame number from 0.
        time: presentation time in seconds (``None`` when unknown).
        values: ``values[subject][metric]``; NaN where undefined (flicker of the first frame).
    """

    index: int
    time: float | None
    values: dict[str, dict[str, float]]


@dataclass
class Summary:
    """Statistics of one metric of one subject over the clip.

    Attributes:
        mean: mean over the frames where defined.
        median: median over the same frames.
        worst: up to three frame indices with the worst values, worst first.
        count: frames where the value is defined.
    """

    mean: float
    median: float
    worst: list[int]
    count: int


@dataclass
class Crop:
    """Side-by-side crops of one frame (input | each model | reference), for the report."""

    index: int
    key_value: float
    labels: list[str]
    image: np.ndarray  # (h, n*w + gaps, 3) uint8 RGB


@dataclass
class ComparisonResult:
    """Everything a report needs; frames are not kept, only numbers and two crops.

    Attributes:
        paired: whether a reference was used.
        subjects: ``input`` then the models, in order.
        metrics: the result columns.
        frames: one :class:`FrameResult` per frame.
        summary: ``summary[subject][metric]``.
        flicker_ratio: per subject, its mean flicker over the input's (unpaired; NaN when
            the input does not change).
        best: crops of the best frame by the key metric.
        worst: crops of the worst frame by the key metric.
        key: ``(subject, metric)`` that picks the best and worst frames.
        warnings: problems that did not stop the comparison (frame-count mismatch…).
        inputs: descriptions of what was compared (paths, models, backend).
        seconds: time the run took.
        cancelled: the run stopped early on request.
    """

    paired: bool
    subjects: list[str]
    metrics: list[MetricInfo]
    frames: list[FrameResult]
    summary: dict[str, dict[str, Summary]]
    flicker_ratio: dict[str, float]
    best: Crop | None
    worst: Crop | None
    key: tuple[str, str]
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cancelled: bool = False

    def series(self, subject: str, metric: str) -> list[float]:
        """The per-frame values of one subject and metric."""
        return [f.values[subject][metric] for f in self.frames]


def _summarise(values: Sequence[float], higher_is_better: bool, keep: int = 3) -> Summary:
    defined = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
    if not defined:
        return Summary(math.nan, math.nan, [], 0)
    arr = np.array([v for v, _ in defined], np.float64)
    finite = arr[np.isfinite(arr)]
    # PSNR of identical frames is inf: the mean over finite values says more than "inf".
    mean = float(finite.mean()) if finite.size else float(arr[0])
    order = sorted(defined, key=lambda p: p[0], reverse=not higher_is_better)
    return Summary(mean, float(np.median(arr)), [i for _, i in order[:keep]], len(defined))


def _crop_box(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    ch, cw = min(h, size), min(w, size)
    top, left = (h - ch) // 2, (w - cw) // 2
    return top, left, ch, cw


def _strip(images: Sequence[np.ndarray], size: int, gap: int = 4) -> np.ndarray:
    h, w = images[0].shape[:2]
    top, left, ch, cw = _crop_box(h, w, size)
    out = np.full((ch, len(images) * (cw + gap) - gap, 3), 255, np.uint8)
    for k, image in enumerate(images):
        x = k * (cw + gap)
        out[:, x : x + cw] = image[top : top + ch, left : left + cw]
    return out


# -- the streaming core --------------------------------------------------------------------


class Comparison:
    """Scores frames one at a time and keeps only numbers and the best/worst crops.

    Args:
        models: names of the compared models, in order (``input`` is added first).
        paired: whether every frame comes with a reference.
        metrics: per-frame metrics (default: PSNR and SSIM when paired, the three sharpness
            measures otherwise). Extra metrics (e.g. LPIPS) plug in here.
        flicker: measure temporal flicker (default: in unpaired mode).
        crop_size: side of the report crops.

    Raises:
        ValueError: a paired metric without a reference, or duplicate subject names.
    """

    def __init__(
        self,
        models: Sequence[str],
        paired: bool,
        metrics: Sequence[FrameMetric] | None = None,
        flicker: bool | None = None,
        crop_size: int = CROP_SIZE,
    ) -> None:
        self.subjects = [INPUT, *models]
        if len(set(self.subjects)) != len(self.subjects):
            raise ValueError(f"subject names must be unique: {self.subjects}")
        self.paired = paired
        self.metrics = list(metrics or (PAIRED_METRICS if paired else UNPAIRED_METRICS))
        if not paired and any(m.paired for m in self.metrics):
            raise ValueError("paired metrics need a reference")
        self.flicker = (not paired) if flicker is None else flicker
        self.crop_size = crop_size
        infos = [MetricInfo(m.name, m.label, m.higher_is_better) for m in self.metrics]
        if self.flicker:
            infos.append(MetricInfo(FLICKER, "Flicker (mean |Δ| to previous)", False))
        self.infos = infos
        first = self.metrics[0]
        # The best and worst frames are judged by the first model (or the input alone) on
        # the first metric: that is what a reader of the report compares.
        self.key = (self.subjects[1] if len(self.subjects) > 1 else INPUT, first.name)
        self._key_higher = first.higher_is_better
        self.frames: list[FrameResult] = []
        self._previous: dict[str, np.ndarray] = {}
        self.best: Crop | None = None
        self.worst: Crop | None = None
        self.warnings: list[str] = []

    def add(
        self,
        input_frame: np.ndarray,
        outputs: Sequence[np.ndarray],
        reference: np.ndarray | None = None,
        time: float | None = None,
    ) -> FrameResult:
        """Score one frame.

        Args:
            input_frame: the blurred input.
            outputs: each model's output, in the order of ``models``.
            reference: the sharp frame (paired mode).
            time: presentation time in seconds.

        Returns:
            The frame's :class:`FrameResult` (also kept in :attr:`frames`).

        Raises:
            CompareError: sizes differ, or the reference is missing in paired mode.

        Shape:
            - input_frame, outputs[i], reference: :math:`(H, W, 3)` uint8 RGB
        """
        images = [input_frame, *outputs]
        if len(images) != len(self.subjects):
            raise ValueError(f"expected {len(self.subjects) - 1} outputs, got {len(outputs)}")
        if self.paired:
            if reference is None:
                raise CompareError("paired comparison without a reference frame")
            if reference.shape != input_frame.shape:
                raise CompareError(
                    f"the reference is {reference.shape[1]}×{reference.shape[0]} but the input "
                    f"is {input_frame.shape[1]}×{input_frame.shape[0]}: sizes must match"
                )
        values: dict[str, dict[str, float]] = {}
        for name, image in zip(self.subjects, images, strict=True):
            if image.shape != input_frame.shape:
                raise CompareError(f"{name}: output size {image.shape} ≠ input {input_frame.shape}")
            row = {m.name: m(image, reference) for m in self.metrics}
            if self.flicker:
                prev = self._previous.get(name)
                row[FLICKER] = mean_abs_difference(image, prev) if prev is not None else math.nan
                # Copied: backends reuse their output buffers between calls.
                self._previous[name] = image.copy()
            values[name] = row
        result = FrameResult(len(self.frames), time, values)
        self.frames.append(result)
        self._track_extremes(result, images, reference)
        return result

    def _track_extremes(
        self, result: FrameResult, images: list[np.ndarray], reference: np.ndarray | None
    ) -> None:
        subject, metric = self.key
        value = result.values[subject][metric]
        if math.isnan(value):
            return
        sign = 1.0 if self._key_higher else -1.0
        better = self.best is None or sign * value > sign * self.best.key_value
        worse = self.worst is None or sign * value < sign * self.worst.key_value
        if not (better or worse):
            return
        shown = images + ([reference] if reference is not None else [])
        labels = self.subjects + (["reference"] if reference is not None else [])
        crop = Crop(result.index, value, labels, _strip(shown, self.crop_size))
        if better:
            self.best = crop
        if worse:
            self.worst = crop

    def result(
        self, inputs: dict[str, str] | None = None, seconds: float = 0.0
    ) -> ComparisonResult:
        """The summary of the frames added so far."""
        summary = {
            s: {
                m.name: _summarise([f.values[s][m.name] for f in self.frames], m.higher_is_better)
                for m in self.infos
            }
            for s in self.subjects
        }
        ratio: dict[str, float] = {}
        if self.flicker:
            base = summary[INPUT][FLICKER].mean
            for s in self.subjects:
                mean = summary[s][FLICKER].mean
                ratio[s] = mean / base if base and not math.isnan(base) else math.nan
        return ComparisonResult(
            paired=self.paired,
            subjects=list(self.subjects),
            metrics=list(self.infos),
            frames=list(self.frames),
            summary=summary,
            flicker_ratio=ratio,
            best=self.best,
            worst=self.worst,
            key=self.key,
            warnings=list(self.warnings),
            inputs=dict(inputs or {}),
            seconds=seconds,
        )


# -- driving it from files and backends ------------------------------------------------------


@dataclass(frozen=True)
class CompareProgress:
    """Progress of :func:`run_comparison`: frames done, frames expected (``None``: unknown)."""

    done: int
    total: int | None
    fps: float


class _Frames:
    """A video file or an image folder as one iterator of (image, time), with its length."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise CompareError(f"{self.path}: not found")
        try:
            if self.path.is_dir():
                folder = ImageFolderSource(self.path)
                self.source: FileSource | ImageFolderSource = folder
                self.total: int | None = len(folder)
            else:
                video = FileSource(self.path)
                self.source = video
                self.total = video.info.frames
        except SourceError as exc:
            raise CompareError(str(exc)) from None
        self.width, self.height = self.source.width, self.source.height

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        try:
            for frame in self.source:
                yield frame.image, frame.time
        except SourceError as exc:
            raise CompareError(str(exc)) from None

    def close(self) -> None:
        self.source.close()


class Model(Protocol):
    """Anything with the backend's ``infer`` (uint8 NHWC in, same shape out)."""

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a batch."""
        ...


def run_comparison(
    input_path: str | os.PathLike,
    models: Sequence[tuple[str, Model]],
    reference_path: str | os.PathLike | None = None,
    *,
    limit: int | None = None,
    metrics: Sequence[FrameMetric] | None = None,
    progress: Callable[[CompareProgress], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_images: Callable[[int, np.ndarray, list[np.ndarray]], None] | None = None,
    cancel: threading.Event | None = None,
    crop_size: int = CROP_SIZE,
) -> ComparisonResult:
    """Compare models on a clip (or image folder), frame by frame.

    Paired when ``reference_path`` is given. If the input and the reference hold different
    numbers of frames, the common prefix is compared and a warning is recorded; frames of
    different sizes raise :class:`CompareError` before any model runs.

    Args:
        input_path: the (blurred) video file or image folder.
        models: ``(name, backend)`` pairs; each backend's ``infer`` runs on batches of one.
        reference_path: the sharp video or folder (paired mode), or ``None``.
        limit: compare at most this many frames.
        metrics: per-frame metrics (default: by mode, see :class:`Comparison`).
        progress: called after every frame.
        on_frame: called with every frame's result.
        on_images: called with every frame's index, input and outputs (for a live view);
            the arrays are valid only during the call: copy what you keep.
        cancel: set it to stop after the current frame (the result is marked cancelled).
        crop_size: side of the report crops.

    Returns:
        The :class:`ComparisonResult`.

    Raises:
        CompareError: missing or unreadable input/reference, size mismatch, no frame.
    """
    started = time.monotonic()
    source = _Frames(input_path)
    reference = None
    try:
        if reference_path is not None:
            reference = _Frames(reference_path)
            if (reference.width, reference.height) != (source.width, source.height):
                raise CompareError(
                    f"{reference.path} is {reference.width}×{reference.height} but "
                    f"{source.path} is {source.width}×{source.height}: sizes must match"
                )
        comparison = Comparison(
            [name for name, _ in models],
            paired=reference is not None,
            metrics=metrics,
            crop_size=crop_size,
        )
        total = source.total
        if reference is not None and reference.total is not None and total is not None:
            total = min(total, reference.total)
        if limit is not None:
            total = min(total, limit) if total is not None else limit
        ref_iter = iter(reference) if reference is not None else None
        done = 0
        input_ended = True
        for image, t in source:
            if (limit is not None and done >= limit) or (cancel is not None and cancel.is_set()):
                input_ended = False
                break
            ref = None
            if ref_iter is not None:
                nxt = next(ref_iter, None)
                if nxt is None:
                    comparison.warnings.append(
                        f"the reference ends after {done} frames; the input has more: "
                        f"compared the first {done}"
                    )
                    input_ended = False
                    break
                ref = nxt[0]
            outputs = [np.ascontiguousarray(m.infer(image[None])[0]) for _, m in models]
            result = comparison.add(image, outputs, ref, t)
            done += 1
            if on_frame is not None:
                on_frame(result)
            if on_images is not None:
                on_images(result.index, image, outputs)
            if progress is not None:
                elapsed = time.monotonic() - started
                progress(CompareProgress(done, total, done / elapsed if elapsed > 0 else 0.0))
        if input_ended and ref_iter is not None and next(ref_iter, None) is not None:
            comparison.warnings.append(
                f"the input ends after {done} frames; the reference has more: "
                f"compared the first {done}"
            )
        if done == 0:
            raise CompareError(f"{source.path}: no frame to compare")
        inputs = {"input": str(source.path)}
        if reference is not None:
            inputs["reference"] = str(reference.path)
        result = comparison.result(inputs, time.monotonic() - started)
        result.cancelled = cancel is not None and cancel.is_set()
        return result
    finally:
        source.close()
        if reference is not None:
            reference.close()


# -- reports -------------------------------------------------------------------------------


def format_summary(result: ComparisonResult) -> str:
    """A text table: one row per subject, mean and median of every metric."""
    headers = ["subject"]
    for m in result.metrics:
        headers += [f"{m.name} mean", f"{m.name} median"]
    if result.flicker_ratio:
        headers.append("flicker ratio")
    rows = []
    for s in result.subjects:
        row = [s]
        for m in result.metrics:
            st = result.summary[s][m.name]
            row += [_fmt(st.mean), _fmt(st.median)]
        if result.flicker_ratio:
            row.append(_fmt(result.flicker_ratio[s]))
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [headers, *rows]
    ]
    subject, metric = result.key
    worst = result.summary[subject][metric].worst
    if worst:
        lines.append(f"worst frames by {subject} {metric}: {', '.join(map(str, worst))}")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "inf"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def write_csv(result: ComparisonResult, path: str | os.PathLike) -> Path:
    """One row per frame: ``frame``, ``time``, then ``SUBJECT.METRIC`` columns (atomic write)."""
    path = Path(path)
    columns = [(s, m.name) for s in result.subjects for m in result.metrics]
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "time", *(f"{s}.{m}" for s, m in columns)])
        for fr in result.frames:
            t = "" if fr.time is None else f"{fr.time:.6f}"
            cells = [fr.values[s][m] for s, m in columns]
            writer.writerow([fr.index, t, *("" if math.isnan(v) else repr(v) for v in cells)])
    return path


def plots_available() -> bool:
    """Whether matplotlib can be imported (plots are skipped otherwise)."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def render_plots(result: ComparisonResult) -> dict[str, bytes]:
    """PNG plots: a per-frame curve per metric (``curve_METRIC.png``) and a bar chart of the
    subjects' means per metric (``bars_METRIC.png``).

    matplotlib is imported here, not at module import: the engine's base install has none.
    Figures are drawn with the Agg canvas directly, never through pyplot, so no GUI backend
    is touched (the app may run this in a worker thread).

    Returns:
        File name → PNG bytes.

    Raises:
        ImportError: matplotlib is not installed.
    """
    figure_mod = importlib.import_module("matplotlib.figure")
    agg = importlib.import_module("matplotlib.backends.backend_agg")
    pngs: dict[str, bytes] = {}
    x = [f.index for f in result.frames]
    for m in result.metrics:
        fig = figure_mod.Figure(figsize=(7, 3), dpi=100)
        agg.FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for s in result.subjects:
            ys = [v if math.isfinite(v) else np.nan for v in result.series(s, m.name)]
            ax.plot(x, ys, label=s, linewidth=1.2, marker="." if len(x) <= 60 else None)
        ax.set_xlabel("frame")
        ax.set_ylabel(m.label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        pngs[f"curve_{m.name}.png"] = _png(fig)

        fig = figure_mod.Figure(figsize=(4.5, 3), dpi=100)
        agg.FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        means = [result.summary[s][m.name].mean for s in result.subjects]
        ax.bar(result.subjects, [v if math.isfinite(v) else 0.0 for v in means], color="#4c78a8")
        ax.set_ylabel(f"mean {m.label}")
        ax.set_title(("higher" if m.higher_is_better else "lower") + " is better", fontsize=9)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        fig.tight_layout()
        pngs[f"bars_{m.name}.png"] = _png(fig)
    return pngs


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("cannot encode the crop")
    return data.tobytes()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.warn{color:#a15c00}img{max-width:100%;image-rendering:pixelated}.crop{margin:1em 0}
.labels span{display:inline-block;text-align:center;font-size:.9em;color:#555}
"""


def render_html(result: ComparisonResult, pngs: dict[str, bytes], plot_note: str = "") -> str:
    """The self-contained HTML report: inline CSS, images as base64 ``data:`` URLs."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>rtdeblur comparison</title>",
        f"<style>{_CSS}</style></head><body><h1>rtdeblur comparison</h1>",
    ]
    mode = "paired (against a sharp reference)" if result.paired else "unpaired (no reference)"
    facts = [f"Mode: {mode}", f"Frames: {len(result.frames)}"]
    facts += [f"{e(k.capitalize())}: {e(v)}" for k, v in result.inputs.items()]
    if result.cancelled:
        facts.append("Stopped early: partial results")
    parts.append("<p>" + "<br>".join(facts) + "</p>")
    for w in result.warnings:
        parts.append(f"<p class='warn'>Warning: {e(w)}</p>")
    parts.append("<h2>Summary</h2><table><tr><th>subject</th>")
    for m in result.metrics:
        arrow = "↑" if m.higher_is_better else "↓"
        parts.append(f"<th>{e(m.label)} {arrow}<br>mean / median</th>")
    parts.append("<th>worst frames</th>")
    if result.flicker_ratio:
        parts.append("<th>flicker ratio<br>(vs input)</th>")
    parts.append("</tr>")
    key_metric = result.key[1]
    for s in result.subjects:
        parts.append(f"<tr><td>{e(s)}</td>")
        for m in result.metrics:
            st = result.summary[s][m.name]
            parts.append(f"<td>{_fmt(st.mean)} / {_fmt(st.median)}</td>")
        worst = result.summary[s][key_metric].worst
        parts.append(f"<td>{', '.join(map(str, worst)) or '–'}</td>")
        if result.flicker_ratio:
            parts.append(f"<td>{_fmt(result.flicker_ratio[s])}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    if plot_note:
        parts.append(f"<p class='warn'>{e(plot_note)}</p>")
    for name, data in pngs.items():
        b64 = base64.b64encode(data).decode("ascii")
        parts.append(f"<img alt='{e(name)}' src='data:image/png;base64,{b64}'>")
    subject, metric = result.key
    for title, crop in (("Best frame", result.best), ("Worst frame", result.worst)):
        if crop is None:
            continue
        b64 = base64.b64encode(_jpeg(crop.image)).decode("ascii")
        parts.append(
            f"<div class='crop'><h2>{title}: frame {crop.index} "
            f"({e(subject)} {e(metric)} = {_fmt(crop.key_value)})</h2>"
            f"<p>Centre crop, left to right: {e(' | '.join(crop.labels))}</p>"
            f"<img alt='{title}' src='data:image/jpeg;base64,{b64}'></div>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote.

    Attributes:
        csv: the per-frame table.
        plots: the PNG files (empty when matplotlib is missing).
        html: the report.
        plot_note: why there are no plots (empty when there are).
    """

    csv: Path
    plots: list[Path]
    html: Path
    plot_note: str = ""


def write_report(
    result: ComparisonResult, folder: str | os.PathLike, plots: bool = True
) -> ReportFiles:
    """Write ``metrics.csv``, the PNG plots and ``report.html`` into ``folder`` (atomically).

    Args:
        result: the comparison.
        folder: the output folder (created if missing).
        plots: draw the plots (needs matplotlib; skipped with a note when it is missing).

    Returns:
        The :class:`ReportFiles`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(result, folder / "metrics.csv")
    pngs: dict[str, bytes] = {}
    note = ""
    if plots:
        try:
            pngs = render_plots(result)
        except ImportError:
            note = "matplotlib is not installed: no plots (pip install matplotlib)."
    else:
        note = "Plots were not requested."
    written = []
    for name, data in pngs.items():
        with atomic_output(folder / name) as tmp:
            tmp.write_bytes(data)
        written.append(folder / name)
    html_path = folder / "report.html"
    with atomic_output(html_path) as tmp:
        tmp.write_text(render_html(result, pngs, note), encoding="utf-8")
    return ReportFiles(csv_path, written, html_path, note)
