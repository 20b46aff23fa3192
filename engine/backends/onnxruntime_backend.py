"""ONNX Runtime inference backend: an exported ``NAME.onnx`` model on the CPU or a CUDA GPU.

This module is part of the torch-free engine core: it imports numpy and onnxruntime only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.backends.base import BackendUnavailableError, ClosingBackend, check_frames
from engine.modelcard import ModelCard, ModelCardError, sha256_of
from engine.pipeline.convert import FrameConverter

ONNXRUNTIME_PRECISIONS = ("fp32", "fp16", "int8")

#: Metadata key of an INT8 file: the sha256 of the fp32 ONNX file it was quantised from.
INT8_SOURCE_KEY = "rtdeblur.source_sha256"

#: INT8 runs by default on the CPU only when its measured PSNR cost (output against the sharp
#: image, on the model's validation set, relative to fp32) is at most this many dB.
INT8_MAX_COST_DB = 0.2

# ONNX tensor type strings as ORT reports them → numpy dtypes the converter can fill.
_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
}


def int8_path_for(card: ModelCard) -> Path:
    """Where the INT8 (QDQ) model of ``card`` lives: ``NAME.int8.onnx`` beside the card."""
    base = card.path.parent if card.path is not None else Path.cwd()
    return (base / f"{card.name}.int8.onnx").resolve()


def validated_int8(card: ModelCard) -> dict | None:
    """The card's measurement of its INT8 file, when that file may run by default.

    ``rtdeblur export --int8`` records in ``metrics["int8"]`` the sha256 of the INT8 file it
    wrote and what the file costs against fp32 on the validation set. The INT8 file qualifies
    when it is still the one measured and its PSNR cost is at most :data:`INT8_MAX_COST_DB`.

    Returns:
        The ``metrics["int8"]`` entry, or ``None`` when there is none, the file is missing or
        another one, or the cost is over the limit.
    """
    entry = (card.metrics or {}).get("int8")
    if not isinstance(entry, dict):
        return None
    cost = entry.get("psnr_cost")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool) or cost > INT8_MAX_COST_DB:
        return None
    path = int8_path_for(card)
    if not path.is_file() or sha256_of(path) != entry.get("sha256"):
        return None
    return entry


def physical_core_count() -> int:
    """Number of physical CPU cores this process may run on.

    SMT siblings share one core's execution units, so an ORT thread per logical CPU only
    makes the threads fight; one per physical core is faster for convolution-heavy graphs.
    Counts unique ``(physical id, core id)`` pairs in ``/proc/cpuinfo`` among the CPUs in the
    process's affinity mask (containers and ``taskset`` restrict it), and falls back to
    ``os.cpu_count()`` where that file lacks the fields (non-Linux, some ARM kernels).

    Returns:
        At least 1.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    try:
        allowed: set[int] | None = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = None
    cores = _count_physical_cores(text, allowed)
    return cores or max(1, os.cpu_count() or 1)


def _count_physical_cores(cpuinfo: str, allowed: set[int] | None = None) -> int:
    """Unique (physical id, core id) pairs in ``cpuinfo`` text; 0 when it has none.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``.
        allowed: logical CPU numbers to count (``None``: all of them).
    """
    pairs = set()
    for block in re.split(r"\n\s*\n", cpuinfo):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "physical id" not in fields or "core id" not in fields:
            continue
        processor = fields.get("processor", "")
        if allowed is not None and processor.isdigit() and int(processor) not in allowed:
            continue
        pairs.add((fields["physical id"], fields["core id"]))
    return len(pairs)


def _parse_device(device: str) -> tuple[str, int]:
    """``"cpu"`` → ("cpu", 0); ``"cuda"`` / ``"cuda:N"`` → ("cuda", N)."""
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", device.strip().lower())
    if match is None or (match[1] == "cpu" and match[2] is not None):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return match[1], int(match[2] or 0)


class OnnxRuntimeBackend(ClosingBackend):
    """Runs an exported ONNX model with ONNX Runtime on uint8 RGB frame batches.

    Pre- and post-processing go through a :class:`~engine.pipeline.convert.FrameConverter`
    (pad to the multiple only when needed, scale to the model's range, NHWC ↔ NCHW, clamp,
    round, crop). The session runs through an IOBinding bound directly to the converter's
    input buffer and to a preallocated output buffer, both kept while the batch shape stays
    the same, so a same-shape call allocates no frame-sized memory.

    Args:
        onnx_path: the ONNX file (one input, one output, NCHW, dynamic batch/height/width).
        input_range: the model's value range ``(low, high)`` (from its card).
        multiple: H and W are padded to a multiple of this (from its card).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: what the file holds: ``"fp32"``, ``"fp16"`` or ``"int8"``. The converter's
            float type follows the graph's input type, not this label.
        threads: CPU intra-op threads; ``None`` uses the number of physical cores.

    Raises:
        BackendUnavailableError: the file is missing or ONNX Runtime cannot load it, or
            ``device`` is a GPU and the CUDA execution provider is not available.
        ValueError: ``device`` or ``precision`` is not one this backend knows.

    Attributes:
        name: ``"onnxruntime"``.
        device: ``"cpu"`` or ``"cuda:N"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        path: the loaded ONNX file.
        threads: intra-op threads used on the CPU (``None`` on CUDA).
    """

    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        input_range: tuple[float, float],
        multiple: int,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        if precision not in ONNXRUNTIME_PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(ONNXRUNTIME_PRECISIONS)}, got {precision!r}"
            )
        kind, index = _parse_device(device)
        self.device = "cpu" if kind == "cpu" else f"cuda:{index}"
        self.precision = precision
        self.path = Path(onnx_path)
        self.threads: int | None = None
        self._on_cuda = kind == "cuda"

        if self._on_cuda:
            providers = _cuda_providers(index)
        else:
            providers = ["CPUExecutionProvider"]
            self.threads = int(threads) if threads else physical_core_count()
        options = _session_options(self.threads)
        self._session = _load_session(self.path, options, providers)
        if self._on_cuda and "CUDAExecutionProvider" not in self._session.get_providers():
            # ORT silently falls back to the CPU when the CUDA/cuDNN libraries fail to load;
            # the caller asked for a GPU and must hear that it will not get one.
            raise BackendUnavailableError(
                "ONNX Runtime has CUDAExecutionProvider but could not start it (CUDA or cuDNN "
                "libraries missing or not matching this onnxruntime-gpu build); see "
                "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html"
            )

        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailableError(
                f"{self.path}: expected a model with one input and one output, got "
                f"{len(inputs)} inputs and {len(outputs)} outputs"
            )
        self._input_name, self._output_name = inputs[0].name, outputs[0].name
        try:
            in_dtype = _ORT_DTYPES[inputs[0].type]
            self._out_dtype = _ORT_DTYPES[outputs[0].type]
        except KeyError:
            raise BackendUnavailableError(
                f"{self.path}: input and output must be float or float16 tensors, got "
                f"{inputs[0].type} and {outputs[0].type}"
            ) from None
        self._converter_args = ((float(input_range[0]), float(input_range[1])), multiple, in_dtype)
        self._converter = FrameConverter(*self._converter_args)
        self._binding = self._session.io_binding()
        self._bound_input: np.ndarray | None = None
        self._output: np.ndarray | None = None

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
    ) -> OnnxRuntimeBackend:
        """The backend for the model ``card`` describes, after checking its file.

        fp32 and fp16 load the card's files after checking their sha256. int8 loads
        ``NAME.int8.onnx`` beside the card (built by ``rtdeblur quantize``), which records the
        sha256 of the fp32 file it was quantised from: it must be the card's (verified) fp32
        file, so an INT8 file left over from earlier weights is refused instead of run.

        Args:
            card: a loaded model card.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
            threads: CPU intra-op threads; ``None`` uses the number of physical cores.

        Returns:
            The loaded backend.

        Raises:
            BackendUnavailableError: the card has no file for ``precision``, or it cannot run.
            ModelCardError: a file is missing or does not match the card's sha256, or the
                INT8 file was not quantised from the card's fp32 file.
        """
        if precision == "fp16":
            if not card.onnx_fp16 or not card.sha256_fp16:
                raise BackendUnavailableError(
                    f"model {card.name!r} has no fp16 ONNX file in its card; export one or "
                    "use precision fp32"
                )
            path = card.verify(fp16=True)
        elif precision == "int8":
            card.verify()
            path = int8_path_for(card)
            if not path.is_file():
                raise BackendUnavailableError(
                    f"model {card.name!r} has no INT8 file: {path} not found; build it with "
                    f"`rtdeblur quantize {card.onnx_path} --card {card.path} --calibration "
                    f"PHOTOS_DIR -o {path}`"
                )
        else:
            path = card.verify()
        backend = cls(
            path,
            (float(card.input_range[0]), float(card.input_range[1])),
            card.multiple,
            device=device,
            precision=precision,
            threads=threads,
        )
        if precision == "int8":
            source = backend.session.get_modelmeta().custom_metadata_map.get(INT8_SOURCE_KEY)
            if source != card.sha256:
                backend.close()
                made = (
                    f"was quantised from another fp32 file (sha256 {source[:12]}…, the card's "
                    f"is {card.sha256[:12]}…)"
                    if source
                    else "does not record which fp32 file it was quantised from"
                )
                raise ModelCardError(
                    f"model {card.name!r}: {path.name} {made}; build it again with "
                    f"`rtdeblur quantize {card.onnx_path} --card {card.path} --calibration "
                    f"PHOTOS_DIR -o {path}`"
                )
        return backend

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session (for inspection; ``infer`` is the way to run it)."""
        if self._session is None:
            raise RuntimeError("the backend is closed")
        return self._session

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a batch of uint8 RGB frames.

        Args:
            frames: uint8 RGB frames.

        Returns:
            uint8 RGB frames of the same shape, in a buffer reused by the next call with the
            same shape: copy it to keep it.

        Raises:
            ValueError: ``frames`` is not a non-empty uint8 (N, H, W, 3) batch, or a frame is
                too small to pad to the model's multiple.

        Shape:
            - frames: :math:`(N, H, W, 3)`
            - output: :math:`(N, H, W, 3)`
        """
        check_frames(frames)
        if frames.size == 0:
            raise ValueError(f"frames must be a non-empty batch, got shape {frames.shape}")
        session = self.session
        model_input = self._converter.to_input(frames)
        if model_input is not self._bound_input:
            # The converter allocates a new input buffer only when the batch shape changes;
            # rebind both ends then and keep the bindings for every later same-shape call.
            self._bind(model_input)
        session.run_with_iobinding(self._binding)
        if self._on_cuda:
            self._binding.synchronize_outputs()
        return self._converter.to_frames(self._output)

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Run once on a black batch of ``shape`` (N, H, W, 3).

        This allocates the buffers for that shape and lets ORT pick its kernels, so the first
        real frame is not slow.
        """
        n, h, w, c = shape
        self.infer(np.zeros((n, h, w, c), np.uint8))

    def close(self) -> None:
        """Release the session and the buffers; ``infer`` raises afterwards."""
        self._binding = None
        self._session = None
        self._bound_input = None
        self._output = None
        # A fresh converter drops the frame-sized buffers the old one held.
        self._converter = FrameConverter(*self._converter_args)

    def __repr__(self) -> str:
        """Name, file, device, precision and threads."""
        return (
            f"OnnxRuntimeBackend({self.path.name!r}, device={self.device!r}, "
            f"precision={self.precision!r}, threads={self.threads})"
        )

    def _bind(self, model_input: np.ndarray) -> None:
        """Bind ``model_input`` and a new output buffer of the same (padded) shape."""
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        # The graph crops its output to its input's size, which is already padded here.
        self._output = np.empty(model_input.shape, self._out_dtype)
        # bind_cpu_input wraps the numpy buffer without a copy (and keeps a reference to it);
        # with CUDA, ORT copies it to the GPU inside the run.
        binding.bind_cpu_input(self._input_name, model_input)
        binding.bind_output(
            self._output_name,
            "cpu",
            0,
            self._out_dtype,
            list(self._output.shape),
            self._output.ctypes.data,
        )
        self._bound_input = model_input


def _session_options(threads: int | None) -> ort.SessionOptions:
    """Session options for a latency-bound, one-frame-at-a-time workload."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The graph is a chain of convolutions: parallelism within each op is what pays, and a
    # parallel executor would only add threads that compete with capture and GUI threads.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    # Spinning workers keep cores at 100 % between frames and starve the app's capture, encode
    # and paint threads on a 2-core machine; they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _cuda_providers(device_id: int) -> list:
    """Providers for a CUDA session, or a clear error when this ORT build has no CUDA."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise BackendUnavailableError(
            "ONNX Runtime on the GPU needs CUDAExecutionProvider, which this onnxruntime "
            f"build lacks (it has {', '.join(available)}); install the GPU build: "
            "pip uninstall onnxruntime && pip install onnxruntime-gpu"
        )
    return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]


def _load_session(path: Path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    """An InferenceSession for ``path``, or BackendUnavailableError naming the file and why."""
    if not path.is_file():
        raise BackendUnavailableError(f"ONNX model file not found: {path}")
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own pybind exception types (Fail, InvalidGraph…)
        reason = str(exc).strip() or type(exc).__name__
        raise BackendUnavailableError(f"ONNX Runtime cannot load {path}: {reason}") from exc
