"""Static INT8 (QDQ) quantisation of an exported model, calibrated on real photos.

The result runs in :class:`~engine.backends.onnxruntime_backend.OnnxRuntimeBackend` with
precision ``"int8"``. :func:`int8_accuracy` measures what the quantisation costs, as the PSNR
of the INT8 output against the fp32 output on held-out photos.

``onnxruntime.quantization`` needs the ``onnx`` package, which the base install lacks; it is
imported only inside the functions that need it.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_output
from engine.backends.base import BackendUnavailableError
from engine.backends.onnxruntime_backend import INT8_SOURCE_KEY, OnnxRuntimeBackend
from engine.modelcard import sha256_of
from engine.pipeline.convert import FrameConverter

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CALIBRATION_METHODS = ("minmax", "percentile")
#: Photos whose activations the calibrator holds at once (see ``quantize_int8``). One at a
#: time keeps the peak near 0.9 GB for the default model at 640×360 whatever the number of
#: photos (8 at a time: 5.7 GB), is faster, and gave the same INT8 file quality
#: (docs/benchmarks.md).
CALIBRATION_CHUNK = 1


def list_images(source: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The image files of a folder (sorted), or the given paths.

    Args:
        source: a folder, or an iterable of image paths.

    Raises:
        FileNotFoundError: the folder or a listed file does not exist.
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder not found: {folder}")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    paths = [Path(p) for p in source]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image not found: {p}")
    return paths


def spread(paths: Sequence[Path], count: int, offset: int = 0) -> list[Path]:
    """``count`` paths evenly spaced through ``paths``, starting ``offset`` in.

    Sorted folders group photos by source; spacing the picks covers every source instead of
    the first one only.
    """
    if count <= 0 or not paths:
        return []
    step = max(1, len(paths) // count)
    return list(paths[offset % step :: step][:count])


def load_frame(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A photo as one uint8 RGB frame of ``size``, scaled to cover it and centre-cropped.

    Args:
        path: image file.
        size: (height, width) of the frame.

    Returns:
        C-contiguous uint8 RGB array.

    Raises:
        ValueError: the file is not a readable image.

    Shape:
        - output: :math:`(H, W, 3)`
    """
    import cv2  # Only quantisation reads photos; keep the import off the module's import path.

    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    height, width = size
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    image = image[top : top + height, left : left + width]
    # OpenCV decodes BGR; the Frame contract is RGB (convert once, at the source).
    return np.ascontiguousarray(image[:, :, ::-1])


class FrameCalibrationReader:
    """Feeds photos, converted exactly as the backend converts frames, to the calibrator.

    Duck-types ``onnxruntime.quantization.CalibrationDataReader`` (which recognises any
    class with ``get_next``), so this module imports without the ``onnx`` package.

    Args:
        images: image files.
        input_name: the graph's input name.
        input_range: the model's value range.
        multiple: H and W are padded to a multiple of this.
        size: (height, width) of the calibration frames.
        dtype: float type of the graph input.
    """

    def __init__(
        self,
        images: Sequence[Path],
        input_name: str,
        input_range: tuple[float, float],
        multiple: int,
        size: tuple[int, int],
        dtype: type = np.float32,
    ) -> None:
        self.images = list(images)
        self.input_name = input_name
        self.size = size
        self._converter = FrameConverter(input_range, multiple, dtype=dtype)
        self._next = 0
        self._end = len(self.images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next calibration input, or ``None`` when every image (of the range) was given."""
        if self._next >= self._end:
            return None
        frame = load_frame(self.images[self._next], self.size)
        self._next += 1
        # The converter reuses its buffer and the calibrator may keep what it is given: copy.
        return {self.input_name: self._converter.to_input(frame[None]).copy()}

    def rewind(self) -> None:
        """Start again from the first image, over all of them."""
        self._next, self._end = 0, len(self.images)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Give images ``start_index`` to ``end_index - 1`` next (the calibrator's chunks)."""
        self._next, self._end = start_index, min(end_index, len(self.images))

    def __len__(self) -> int:
        """Number of calibration images."""
        return len(self.images)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            "INT8 quantisation needs the onnx package: pip install onnx"
        ) from None


def quantize_int8(
    src_onnx: str | os.PathLike,
    dst_onnx: str | os.PathLike,
    calibration_images: str | os.PathLike | Iterable[str | os.PathLike],
    input_range: tuple[float, float],
    multiple: int,
    size: tuple[int, int] = (360, 640),
    max_images: int = 32,
    method: str = "percentile",
    chunk: int = CALIBRATION_CHUNK,
) -> Path:
    """Write a static INT8 QDQ copy of ``src_onnx``, calibrated on real photos.

    Weights are QInt8 per output channel, activations QUInt8 per tensor (U8S8, the pairing
    ORT's x86 and ARM kernels are fastest with). The graph is pre-processed first (ORT basic
    optimisations and ONNX shape inference; the symbolic shape pass cannot resolve the
    graph's in-graph padding arithmetic and is skipped). The file is written under a
    temporary name in the destination folder and renamed when complete.

    Args:
        src_onnx: the fp32 ONNX model.
        dst_onnx: the INT8 file to write (by convention ``NAME.int8.onnx`` beside the card).
        calibration_images: a folder of photos or a list of image files.
        input_range: the model's value range.
        multiple: H and W are padded to a multiple of this.
        size: (height, width) the photos are scaled and cropped to.
        max_images: at most this many photos, spread evenly over ``calibration_images``.
        method: activation ranges from ``"percentile"`` (99.999th; the default) or
            ``"minmax"`` (about 8x faster to calibrate). Which loses less accuracy depends on
            the weights (see docs/benchmarks.md): measure both on blurred validation photos.
        chunk: photos whose activations are held in memory at once; ranges and histograms
            are merged over the chunks (the percentile calibrator keeps every activation of
            the photos it is given, and copies them while it bins them: about 0.7 GB per
            640×360 photo for the default model).

    Returns:
        The path written.

    Raises:
        BackendUnavailableError: the ``onnx`` package is missing.
        FileNotFoundError: the source model or the photo folder is missing.
        ValueError: no photos were found, or ``method`` is unknown.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    _require_onnx()
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    src, dst = Path(src_onnx), Path(dst_onnx)
    if not src.is_file():
        raise FileNotFoundError(f"ONNX model not found: {src}")
    images = spread(list_images(calibration_images), max_images)
    if not images:
        raise ValueError(f"no calibration images found in {calibration_images}")
    # Loading the source through the backend checks it runs and gives the input name/type.
    probe = OnnxRuntimeBackend(src, input_range, multiple, threads=1)
    (graph_input,) = probe.session.get_inputs()
    dtype = np.float16 if graph_input.type == "tensor(float16)" else np.float32
    probe.close()
    reader = FrameCalibrationReader(images, graph_input.name, input_range, multiple, size, dtype)

    with tempfile.TemporaryDirectory(prefix="rtdeblur-quant-") as work:
        pre = Path(work) / "preprocessed.onnx"
        try:
            quant_pre_process(src, pre, skip_symbolic_shape=True)
        except Exception:  # a graph the pre-pass cannot handle still quantises without it
            pre = src
        pre, in_float = _prepare(pre, Path(work) / "prepared.onnx", reader)
        calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
        extra: dict[str, Any] = {"CalibStridedMinMax": _chunk_size(len(images), chunk)}
        if method == "percentile":
            extra["CalibPercentile"] = 99.999
        with atomic_output(dst) as tmp:
            quantize_static(
                pre,
                tmp,
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=calibrate[method],
                nodes_to_exclude=in_float,
                extra_options=extra,
            )
            finish_int8(tmp, src, in_float)
    return dst


def _prepare(pre: Path, out: Path, reader: FrameCalibrationReader) -> tuple[Path, list[str]]:
    """The graph to quantise, and the convolutions to keep in float (see
    :mod:`engine.backends.int8_layout`).

    Pixel-repeating Resize nodes become block copies when that changes nothing: both graphs
    run on the first calibration frame and must give identical outputs; otherwise they stay
    (with a warning). Convolutions of the image itself are named to stay in float.
    """
    import onnx
    import onnxruntime as ort

    from engine.backends.int8_layout import image_convolutions, nearest_upsampling_as_copies

    model = onnx.load(os.fspath(pre))
    original = model.SerializeToString()
    if nearest_upsampling_as_copies(model):
        feed = reader.get_next()
        reader.rewind()
        outputs = [
            ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, feed)
            for graph in (original, model.SerializeToString())
        ]
        if not all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True)):
            warnings.warn(
                "the upsampling rewrite changed the model's output; quantising the graph as it is",
                RuntimeWarning,
                stacklevel=3,
            )
            model = onnx.load_from_string(original)
    in_float = image_convolutions(model)
    onnx.save(model, os.fspath(out))
    return out, in_float


def _chunk_size(count: int, most: int) -> int:
    """The largest number of photos ≤ ``most`` that divides ``count`` (the calibrator's
    chunks must all be the same size)."""
    return max(d for d in range(1, max(1, min(most, count)) + 1) if count % d == 0)


def finish_int8(
    int8_onnx: str | os.PathLike, src_onnx: str | os.PathLike, in_float: Sequence[str] = ()
) -> None:
    """Last touches to a freshly quantised file, in place: ``Shape`` nodes read quantised
    tensors, pixel shuffles move quantised values, the nodes ``in_float`` (left out of the
    quantisation) read float inputs, concatenations copy inputs quantised on their grid (see
    :mod:`engine.backends.int8_layout`), and the metadata notes the sha256 of the fp32 file it
    was quantised from (checked when a model card loads it: see
    ``OnnxRuntimeBackend.from_card``)."""
    import onnx

    from engine.backends.int8_layout import (
        concat_inputs_on_output_grid,
        float_inputs_for,
        rearrange_before_dequantize,
        shapes_before_dequantize,
    )

    model = onnx.load(os.fspath(int8_onnx))
    shapes_before_dequantize(model)
    float_inputs_for(model, list(in_float))
    rearrange_before_dequantize(model)
    concat_inputs_on_output_grid(model)
    kept = [p for p in model.metadata_props if p.key != INT8_SOURCE_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = INT8_SOURCE_KEY, sha256_of(src_onnx)
    onnx.save(model, os.fspath(int8_onnx))


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (``inf`` when identical)."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def int8_accuracy(
    fp32_onnx: str | os.PathLike,
    int8_onnx: str | os.PathLike,
    images: str | os.PathLike | Iterable[str | os.PathLike],
    input_range: tuple[float, float],
    multiple: int,
    size: tuple[int, int] = (360, 640),
    threads: int | None = None,
) -> dict[str, Any]:
    """What INT8 costs: the INT8 model's output against the fp32 model's, on real photos.

    Both models run through :class:`OnnxRuntimeBackend` (same pre/post-processing as the
    app) on the CPU, one photo per batch. Use photos the calibration did not see.

    Args:
        fp32_onnx: the fp32 model.
        int8_onnx: its quantised copy.
        images: a folder of photos or a list of image files.
        input_range: the model's value range.
        multiple: H and W are padded to a multiple of this.
        size: (height, width) the photos are scaled and cropped to.
        threads: CPU threads for both sessions (``None``: physical cores).

    Returns:
        ``images`` (count), ``psnr_mean`` and ``psnr_min`` (dB, INT8 output vs fp32 output;
        ``inf`` where identical), ``max_abs_diff`` and ``mean_abs_diff`` (0…255 units), and
        ``fp32_ms`` / ``int8_ms``: median milliseconds per frame measured in this same run.

    Raises:
        ValueError: no images were found.
        BackendUnavailableError: a model cannot be loaded.
    """
    paths = list_images(images)
    if not paths:
        raise ValueError(f"no images found in {images}")
    height, width = size
    with (
        OnnxRuntimeBackend(fp32_onnx, input_range, multiple, threads=threads) as fp32,
        OnnxRuntimeBackend(
            int8_onnx, input_range, multiple, precision="int8", threads=threads
        ) as int8,
    ):
        for backend in (fp32, int8):
            backend.warmup((1, height, width, 3))
        psnrs, max_diffs, mean_diffs = [], [], []
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        for path in paths:
            frame = load_frame(path, size)[None]
            outputs = {}
            for key, backend in (("fp32", fp32), ("int8", int8)):
                start = time.perf_counter()
                # The backend reuses its output buffer: copy to compare after the next call.
                outputs[key] = backend.infer(frame).copy()
                times[key].append((time.perf_counter() - start) * 1e3)
            diff = np.abs(outputs["fp32"].astype(np.int16) - outputs["int8"].astype(np.int16))
            psnrs.append(psnr_uint8(outputs["fp32"], outputs["int8"]))
            max_diffs.append(int(diff.max()))
            mean_diffs.append(float(diff.mean()))
    return {
        "images": len(paths),
        "size": (height, width),
        "psnr_mean": statistics.fmean(psnrs),
        "psnr_min": min(psnrs),
        "max_abs_diff": max(max_diffs),
        "mean_abs_diff": statistics.fmean(mean_diffs),
        "fp32_ms": statistics.median(times["fp32"]),
        "int8_ms": statistics.median(times["int8"]),
    }
