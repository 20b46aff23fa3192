"""TensorRT inference backend, with engines built on the user's machine and cached on disk.

Works with NVIDIA TensorRT (``tensorrt``, 10.x and 11.x) and TensorRT for RTX
(``tensorrt_rtx``), and moves data with cuda-python's runtime API (``cuda.bindings.runtime``,
or ``cuda.cudart`` in cuda-python older than 12.8). Both are imported only when a backend is
constructed, so this module imports on any machine; it never imports torch or Qt.

Engines are specific to the ONNX file, the TensorRT flavour and version, the GPU, the
precision and the input shape, so they are built from the ONNX file on first use and cached
under :func:`default_engine_cache_dir`, named by a hash of exactly those facts
(:func:`engine_cache_key`). A JSON sidecar beside each engine repeats the facts and the
engine's sha256; an engine whose sidecar does not match, or that TensorRT cannot deserialise,
is rebuilt, never loaded.

The pure-Python parts (cache key, paths, sidecars) are usable and tested without TensorRT.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from engine.backends import fp16_onnx
from engine.backends.base import BackendUnavailableError, ClosingBackend, check_frames
from engine.modelcard import ModelCard, sha256_of
from engine.pipeline.convert import FrameConverter, padded_size

_LOG = logging.getLogger(__name__)

#: The Python modules this backend can drive, in the order they are tried.
FLAVOURS = ("tensorrt", "tensorrt_rtx")
TENSORRT_PRECISIONS = ("fp32", "fp16")
#: Environment variable that moves the engine cache (beats ``XDG_CACHE_HOME``).
ENGINE_CACHE_ENV = "RTDEBLUR_ENGINE_CACHE"
#: Version of the sidecar format; a sidecar of another version never matches.
SIDECAR_VERSION = 1

_INSTALL_TENSORRT = (
    "the TensorRT backend needs NVIDIA TensorRT's Python package: `tensorrt` (TensorRT 10 or "
    "newer; pip install tensorrt, or pip install 'rtdeblur[tensorrt]') or `tensorrt_rtx` "
    "(TensorRT for RTX on GeForce RTX GPUs; pip install tensorrt-rtx), plus an NVIDIA driver"
)
_INSTALL_CUDA_PYTHON = (
    "the TensorRT backend needs cuda-python for GPU memory and streams: pip install "
    "cuda-python (or pip install 'rtdeblur[tensorrt]')"
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CUDA_SUCCESS = 0


# -- the engine cache: pure Python, no TensorRT needed ---------------------------------------


def default_engine_cache_dir() -> Path:
    """Where engines are cached unless the caller says otherwise.

    ``$RTDEBLUR_ENGINE_CACHE`` if set; otherwise ``$XDG_CACHE_HOME/rtdeblur/engines`` (an
    absolute ``XDG_CACHE_HOME`` only, as the XDG spec says), ``%LOCALAPPDATA%`` on Windows,
    or ``~/.cache/rtdeblur/engines``.
    """
    override = os.environ.get(ENGINE_CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path.home() / ".cache"
    return base / "rtdeblur" / "engines"


@dataclass(frozen=True)
class EngineFacts:
    """Everything that decides whether a serialised engine may be loaded.

    Build it with :meth:`create`, which validates and normalises the fields so that equal
    facts always give the same key.

    Attributes:
        onnx_sha256: sha256 of the ONNX file the engine was built from (lower-case hex).
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        trt_version: the flavour's version string, e.g. ``"10.13.0.35"``.
        gpu_name: the GPU's name as CUDA reports it.
        compute_capability: ``"major.minor"``, e.g. ``"9.0"``.
        precision: ``"fp32"`` or ``"fp16"``.
        shape: the optimisation profile, ``(N, H, W)`` of the padded input.
    """

    onnx_sha256: str
    flavour: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    shape: tuple[int, int, int]

    @classmethod
    def create(
        cls,
        onnx_sha256: str,
        flavour: str,
        trt_version: str,
        gpu_name: str,
        compute_capability: str | tuple[int, int],
        precision: str,
        shape: tuple[int, int, int],
    ) -> EngineFacts:
        """Validated, normalised facts (see the class attributes).

        Raises:
            ValueError: a field is malformed (not a sha256, unknown flavour or precision,
                empty version or GPU name, capability not ``major.minor``, shape not three
                positive integers).
        """
        sha = str(onnx_sha256).strip().lower()
        if not _HEX64.fullmatch(sha):
            raise ValueError(f"onnx_sha256 must be 64 hex digits, got {onnx_sha256!r}")
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
        version, gpu = str(trt_version).strip(), str(gpu_name).strip()
        if not version or not gpu:
            raise ValueError("trt_version and gpu_name must not be empty")
        if isinstance(compute_capability, tuple):
            capability = ".".join(str(int(v)) for v in compute_capability)
        else:
            capability = str(compute_capability).strip()
        if not re.fullmatch(r"\d+\.\d+", capability):
            raise ValueError(f"compute_capability must be 'major.minor', got {capability!r}")
        if precision not in TENSORRT_PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(TENSORRT_PRECISIONS)}, got {precision!r}"
            )
        dims = tuple(int(v) for v in shape)
        if len(dims) != 3 or min(dims) < 1:
            raise ValueError(f"shape must be (N, H, W) of positive integers, got {shape!r}")
        return cls(sha, flavour, version, gpu, capability, precision, dims)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The facts as JSON-ready values."""
        return {
            "onnx_sha256": self.onnx_sha256,
            "flavour": self.flavour,
            "trt_version": self.trt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "shape": list(self.shape),
        }

    def key(self) -> str:
        """A 24-hex-digit hash of every fact: equal facts, equal key; any change, new key."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def file_name(self, name: str = "model") -> str:
        """A readable engine file name: model, precision, shape, flavour, SM and the key."""
        slug = _slug(name)
        version = re.sub(r"[^A-Za-z0-9.]+", "-", self.trt_version)
        n, h, w = self.shape
        sm = self.compute_capability.replace(".", "")
        return (
            f"{slug}_{self.precision}_{n}x{h}x{w}_{self.flavour}-{version}_sm{sm}_{self.key()}"
            ".engine"
        )


def engine_cache_key(
    onnx_sha256: str,
    flavour: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str | tuple[int, int],
    precision: str,
    shape: tuple[int, int, int],
) -> str:
    """The hash that names a cached engine; it changes whenever any fact changes.

    Args:
        onnx_sha256: sha256 of the ONNX file parsed (the fp16 file for fp16 engines).
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        trt_version: the flavour's version string.
        gpu_name: the GPU's name as CUDA reports it.
        compute_capability: ``"major.minor"`` or ``(major, minor)``.
        precision: ``"fp32"`` or ``"fp16"``.
        shape: the padded input ``(N, H, W)`` of the optimisation profile.

    Returns:
        24 lower-case hex digits.

    Raises:
        ValueError: a fact is malformed (see :meth:`EngineFacts.create`).
    """
    return EngineFacts.create(
        onnx_sha256, flavour, trt_version, gpu_name, compute_capability, precision, shape
    ).key()


def engine_cache_path(
    onnx_sha256: str,
    flavour: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str | tuple[int, int],
    precision: str,
    shape: tuple[int, int, int],
    *,
    name: str = "model",
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Where the engine for these facts lives (see :func:`engine_cache_key` for the facts).

    Args:
        onnx_sha256: sha256 of the ONNX file parsed.
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        trt_version: the flavour's version string.
        gpu_name: the GPU's name.
        compute_capability: ``"major.minor"`` or ``(major, minor)``.
        precision: ``"fp32"`` or ``"fp16"``.
        shape: the padded input ``(N, H, W)``.
        name: readable prefix of the file name (the model name).
        cache_dir: the cache folder; default :func:`default_engine_cache_dir`.

    Returns:
        ``cache_dir / "<name>_<precision>_<N>x<H>x<W>_<flavour>-<version>_sm<CC>_<key>.engine"``.
    """
    facts = EngineFacts.create(
        onnx_sha256, flavour, trt_version, gpu_name, compute_capability, precision, shape
    )
    root = Path(cache_dir) if cache_dir is not None else default_engine_cache_dir()
    return root / facts.file_name(name)


def _slug(name: str) -> str:
    """``name`` reduced to characters safe in a file name on every platform."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:48] or "model"


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    """The JSON sidecar of an engine file (same name, ``.json``)."""
    return Path(engine_path).with_suffix(".json")


def sidecar_matches(engine_path: str | os.PathLike, facts: EngineFacts) -> bool:
    """Whether the engine's sidecar exists, is readable and records exactly ``facts``.

    A missing, unreadable or foreign sidecar (other format version, other ONNX, TensorRT,
    GPU, precision or shape) does not match.
    """
    try:
        data = json.loads(sidecar_path(engine_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sidecar_version") == SIDECAR_VERSION
        and data.get("facts") == facts.to_dict()
        and isinstance(data.get("engine_sha256"), str)
    )


def read_cached_engine(engine_path: str | os.PathLike, facts: EngineFacts) -> bytes | None:
    """The serialised engine at ``engine_path`` if it may be loaded for ``facts``, else None.

    It may be loaded only when the sidecar matches ``facts`` and the engine file's size and
    sha256 are the ones the sidecar recorded (a truncated or swapped file is not loaded).
    """
    path = Path(engine_path)
    if not sidecar_matches(path, facts):
        return None
    try:
        record = json.loads(sidecar_path(path).read_text())
        plan = path.read_bytes()
    except (OSError, ValueError):
        return None
    if len(plan) != record.get("engine_bytes"):
        return None
    if hashlib.sha256(plan).hexdigest() != record.get("engine_sha256"):
        return None
    return plan


def write_cached_engine(engine_path: str | os.PathLike, plan: bytes, facts: EngineFacts) -> Path:
    """Store a serialised engine and its sidecar, each atomically (temp file, then rename).

    The engine is written first and the sidecar last, so a crash in between leaves a sidecar
    whose recorded sha256 does not match and the engine is rebuilt.

    Args:
        engine_path: the engine file (from :func:`engine_cache_path`).
        plan: the serialised engine.
        facts: the facts it was built for.

    Returns:
        ``engine_path``.
    """
    path = Path(engine_path)
    plan = bytes(plan)
    record = {
        "sidecar_version": SIDECAR_VERSION,
        "facts": facts.to_dict(),
        "engine_sha256": hashlib.sha256(plan).hexdigest(),
        "engine_bytes": len(plan),
    }
    _write_atomic(path, plan)
    _write_atomic(sidecar_path(path), (json.dumps(record, indent=2) + "\n").encode())
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- lazy imports of the GPU stack -------------------------------------------------------------


def _import_tensorrt(flavour: str | None = None) -> tuple[ModuleType, str]:
    """The TensorRT module to use and its flavour name, or a clear error naming both."""
    if flavour is not None and flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    problems = []
    for name in (flavour,) if flavour else FLAVOURS:
        try:
            return importlib.import_module(name), name
        except (ImportError, OSError) as exc:  # OSError: the wheel is there, its libs are not
            problems.append(f"{name}: {exc}")
    raise BackendUnavailableError(f"{_INSTALL_TENSORRT} ({'; '.join(problems)})")


def _import_cudart() -> ModuleType:
    """cuda-python's runtime API module, or a clear error naming cuda-python."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.8
    except ImportError:
        try:
            from cuda import cudart as runtime  # older cuda-python
        except ImportError:
            raise BackendUnavailableError(_INSTALL_CUDA_PYTHON) from None
    return runtime


def _parse_device(device: str) -> int:
    """``"cuda"`` → 0, ``"cuda:N"`` → N; anything else is not a TensorRT device."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device.strip().lower())
    if match is None:
        raise ValueError(
            f"TensorRT runs on CUDA GPUs: device must be 'cuda' or 'cuda:N', got {device!r}"
        )
    return int(match[1] or 0)


class _Cuda:
    """The few CUDA runtime calls the backend makes, with errors turned into exceptions."""

    def __init__(self, runtime: ModuleType) -> None:
        self.rt = runtime

    def __call__(self, function: str, *args: Any) -> Any:
        """Call ``cudart.<function>(*args)``; return its value(s) or raise RuntimeError."""
        result = getattr(self.rt, function)(*args)
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != _CUDA_SUCCESS:
            raise RuntimeError(f"CUDA {function} failed: {self.describe(err)}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def describe(self, err: Any) -> str:
        """``cudaErrorName: description`` for an error code."""
        try:
            name = self.rt.cudaGetErrorName(err)[1]
            text = self.rt.cudaGetErrorString(err)[1]
            return f"{_text(name)}: {_text(text)}"
        except Exception:  # describing an error must never hide it
            return f"error {int(err)}"

    def gpu(self, index: int) -> tuple[str, str]:
        """Name and ``major.minor`` compute capability of GPU ``index``; selects it.

        Raises:
            BackendUnavailableError: no driver, no GPU, or no GPU with that index.
        """
        try:
            count = self("cudaGetDeviceCount")
        except RuntimeError as exc:
            raise BackendUnavailableError(
                f"the TensorRT backend needs an NVIDIA GPU and driver, and CUDA finds none ({exc})"
            ) from None
        if index >= count:
            raise BackendUnavailableError(
                f"the TensorRT backend was asked for cuda:{index}, but CUDA sees {count} GPU(s)"
            )
        try:
            self("cudaSetDevice", index)  # fails on a busy exclusive-mode or broken GPU
            prop = self("cudaGetDeviceProperties", index)
        except RuntimeError as exc:
            raise BackendUnavailableError(f"GPU cuda:{index} cannot be used ({exc})") from None
        return _text(prop.name), f"{int(prop.major)}.{int(prop.minor)}"


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    return str(value).strip()


# -- the backend ---------------------------------------------------------------------------


@dataclass
class _Slot:
    """The engine for one input shape, its context and its once-allocated buffers."""

    shape: tuple[int, int, int]
    engine: Any
    context: Any
    converter: FrameConverter
    host_in: np.ndarray
    host_out: np.ndarray
    pointers: dict[str, int] = field(default_factory=dict)  # host_in/host_out/dev_in/dev_out
    runtime_config: Any = None  # TensorRT-RTX: keeps the runtime cache alive with the context
    runtime_cache_saved: bool = False


class TensorRTBackend(ClosingBackend):
    """Runs an ONNX model with TensorRT on an NVIDIA GPU.

    An engine is built per padded input shape ``(N, H_p, W_p)`` with an optimisation profile
    of exactly that shape (min = opt = max), loaded from the engine cache when one matches,
    and replaced when the frame size changes. fp16 builds a strongly-typed network from an
    fp16 ONNX file (the card's, or one converted by :func:`~engine.backends.fp16_onnx.
    convert_to_fp16` and cached), because TensorRT 11 and TensorRT for RTX have no builder
    precision flags; only a TensorRT without strong typing falls back to ``BuilderFlag.FP16``
    on the fp32 file. fp32 turns TF32 off, so fp32 means fp32.

    Frames are converted on the host (:class:`~engine.pipeline.convert.FrameConverter`,
    float32 or float16 as the engine's input says), copied to page-locked buffers, sent to
    the GPU with ``cudaMemcpyAsync``, run with ``execute_async_v3`` on the backend's stream and
    copied back; host and device buffers are allocated once per shape.

    The ONNX file is parsed at construction, so an operator TensorRT cannot handle makes the
    constructor fail (and the caller fall back) instead of the first frame.

    Args:
        onnx_path: the fp32 ONNX file (one input, one output, NCHW, dynamic batch/height/width).
        input_range: the model's value range ``(low, high)``.
        multiple: H and W are padded to a multiple of this.
        device: ``"cuda"`` or ``"cuda:N"``.
        precision: ``"fp32"`` or ``"fp16"``.
        fp16_onnx_path: an fp16 version of the model to use for fp16 (default: converted from
            ``onnx_path`` into the cache).
        cache_dir: engine cache folder (default :func:`default_engine_cache_dir`).
        flavour: force ``"tensorrt"`` or ``"tensorrt_rtx"`` (default: the first that imports).
        workspace_bytes: limit of TensorRT's workspace memory pool while building.
        name: readable prefix of cached file names (default: the ONNX file's stem).

    Raises:
        BackendUnavailableError: TensorRT, cuda-python, the driver, the GPU or the ``onnx``
            package (fp16 conversion) is missing, the file is missing, or TensorRT cannot parse
            the model.
        ValueError: ``device`` or ``precision`` is not one this backend knows.

    Attributes:
        name: ``"tensorrt"``.
        device: ``"cuda:N"``.
        precision: ``"fp32"`` or ``"fp16"``.
        flavour: ``"tensorrt"`` or ``"tensorrt_rtx"``.
        trt_version: the flavour's version.
        gpu_name: the GPU's name.
        compute_capability: ``"major.minor"``.
        cache_dir: the engine cache folder.
        onnx_path: the ONNX file TensorRT parses (the fp16 one for fp16 strongly typed).
    """

    name = "tensorrt"

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        input_range: tuple[float, float],
        multiple: int,
        device: str = "cuda",
        precision: str = "fp16",
        *,
        fp16_onnx_path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        flavour: str | None = None,
        workspace_bytes: int | None = None,
        name: str | None = None,
    ) -> None:
        if precision not in TENSORRT_PRECISIONS:
            raise ValueError(
                f"TensorRT precision must be one of {', '.join(TENSORRT_PRECISIONS)}, "
                f"got {precision!r}"
            )
        index = _parse_device(device)
        self.device = f"cuda:{index}"
        self.precision = precision
        self._input_range = (float(input_range[0]), float(input_range[1]))
        self._multiple = int(multiple)
        self._workspace = workspace_bytes
        self._slot: _Slot | None = None
        self._stream: Any = None
        self._closed = False

        # Libraries first: on a machine without them, that is the one thing worth saying.
        self._trt, self.flavour = _import_tensorrt(flavour)
        self.trt_version = str(getattr(self._trt, "__version__", "unknown"))
        if self.flavour == "tensorrt" and _major(self.trt_version) < 10:
            raise BackendUnavailableError(
                f"TensorRT {self.trt_version} is too old for this backend (it needs 10 or "
                "newer): pip install -U tensorrt"
            )
        self._cuda = _Cuda(_import_cudart())
        self._index = index
        self.gpu_name, self.compute_capability = self._cuda.gpu(index)
        self._device_thread = threading.get_ident()

        source = Path(onnx_path)
        if not source.is_file():
            raise BackendUnavailableError(f"ONNX model file not found: {source}")
        self._label = name or source.stem
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_engine_cache_dir()
        flags = self._trt.NetworkDefinitionCreationFlag
        # Setting STRONGLY_TYPED is required on TensorRT 10.x and accepted (ignored, always
        # on) by 11.x and TensorRT for RTX; only a TensorRT without it needs the FP16 flag.
        self._strongly_typed = hasattr(flags, "STRONGLY_TYPED")
        if precision == "fp16" and self._strongly_typed:
            self.onnx_path = self._fp16_source(source, fp16_onnx_path)
        elif precision == "fp16" and not hasattr(self._trt.BuilderFlag, "FP16"):
            raise BackendUnavailableError(
                f"{self.flavour} {self.trt_version} has neither strongly typed networks nor "
                "BuilderFlag.FP16; use precision fp32 or upgrade TensorRT"
            )
        else:
            self.onnx_path = source
        self._onnx_sha256 = sha256_of(self.onnx_path)

        self._logger = _make_logger(self._trt)
        try:
            self._runtime = self._trt.Runtime(self._logger)
            stream_flags = self._cuda.rt.cudaStreamNonBlocking
            self._stream = self._cuda("cudaStreamCreateWithFlags", stream_flags)
        except (RuntimeError, TypeError) as exc:  # pybind reports a failed init as TypeError
            raise BackendUnavailableError(
                f"{self.flavour} {self.trt_version} cannot start on {self.device} ({exc}; "
                f"{self._logger.summary()})"
            ) from None
        try:
            self._parsed = self._parse()  # fail now, not on the first frame, if TensorRT cannot
        except BaseException:
            self._cuda("cudaStreamDestroy", self._stream)
            self._stream = None
            raise

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        device: str = "cuda",
        precision: str = "fp16",
        **options: Any,
    ) -> TensorRTBackend:
        """The backend for the model ``card`` describes, after checking its files.

        The fp32 file is checked against the card's sha256; for fp16 the card's fp16 file is
        used (and checked) when it has one, otherwise one is converted and cached.

        Args:
            card: a loaded model card.
            device: ``"cuda"`` or ``"cuda:N"``.
            precision: ``"fp32"`` or ``"fp16"``.
            **options: ``cache_dir``, ``flavour``, ``workspace_bytes`` (see the class).

        Returns:
            The loaded backend.

        Raises:
            BackendUnavailableError: see the class.
            ModelCardError: a file is missing or does not match the card's sha256.
        """
        # Fail on a missing TensorRT before hashing model files: the common case off-GPU.
        _import_tensorrt(options.get("flavour"))
        _import_cudart()
        onnx_path = card.verify()
        fp16_path = None
        if precision == "fp16" and card.onnx_fp16 and card.sha256_fp16:
            fp16_path = card.verify(fp16=True)
        lo, hi = (float(v) for v in card.input_range)
        return cls(
            onnx_path,
            (lo, hi),
            card.multiple,
            device=device,
            precision=precision,
            fp16_onnx_path=fp16_path,
            name=card.name,
            **options,
        )

    # -- the Backend protocol ------------------------------------------------------------

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a batch of uint8 RGB frames.

        Args:
            frames: uint8 RGB frames.

        Returns:
            uint8 RGB frames of the same shape, in a buffer reused by the next call with the
            same shape: copy it to keep it.

        Raises:
            ValueError: ``frames`` is not a non-empty uint8 (N, H, W, 3) batch.
            BackendUnavailableError: TensorRT cannot build an engine for this shape.
            RuntimeError: a CUDA call or the execution failed, or the backend is closed.

        Shape:
            - frames: :math:`(N, H, W, 3)`
            - output: :math:`(N, H, W, 3)`
        """
        check_frames(frames)
        if frames.size == 0:
            raise ValueError(f"frames must be a non-empty batch, got shape {frames.shape}")
        if self._closed:
            raise RuntimeError("the backend is closed")
        if threading.get_ident() != self._device_thread:
            # The current device is per host thread: the app's worker thread is not the one
            # that constructed the backend.
            self._cuda("cudaSetDevice", self._index)
            self._device_thread = threading.get_ident()
        slot = self._activate(frames.shape)
        cuda, ptr, stream = self._cuda, slot.pointers, self._stream
        # Page-locked staging buffers make the copies truly asynchronous DMA transfers.
        slot.converter.to_input(frames, out=slot.host_in)
        cuda(
            "cudaMemcpyAsync",
            ptr["dev_in"],
            ptr["host_in"],
            slot.host_in.nbytes,
            cuda.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
            stream,
        )
        self._logger.errors.clear()
        if not slot.context.execute_async_v3(int(stream)):
            raise RuntimeError(f"TensorRT execution failed: {self._logger.summary()}")
        cuda(
            "cudaMemcpyAsync",
            ptr["host_out"],
            ptr["dev_out"],
            slot.host_out.nbytes,
            cuda.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
            stream,
        )
        cuda("cudaStreamSynchronize", stream)
        if slot.runtime_config is not None and not slot.runtime_cache_saved:
            slot.runtime_cache_saved = True
            self._save_runtime_cache(slot)
        return slot.converter.to_frames(slot.host_out)

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Build or load the engine for ``shape`` (N, H, W, 3) and run it once on black frames."""
        n, h, w, c = shape
        self.infer(np.zeros((n, h, w, c), np.uint8))

    def close(self) -> None:
        """Free the buffers, the stream, the context and the engine; ``infer`` raises after."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream is not None:
                self._cuda("cudaStreamSynchronize", self._stream)
        finally:
            self._release_slot()
            if self._stream is not None:
                self._cuda("cudaStreamDestroy", self._stream)
                self._stream = None
            self._parsed = None
            self._runtime = None

    def __repr__(self) -> str:
        """Name, file, device, precision and TensorRT flavour."""
        return (
            f"TensorRTBackend({self.onnx_path.name!r}, device={self.device!r}, "
            f"precision={self.precision!r}, {self.flavour} {self.trt_version})"
        )

    # -- engines -------------------------------------------------------------------------

    def engine_facts(self, shape: tuple[int, int, int]) -> EngineFacts:
        """The cache facts of this backend's engine for padded input ``(N, H, W)``."""
        return EngineFacts.create(
            self._onnx_sha256,
            self.flavour,
            self.trt_version,
            self.gpu_name,
            self.compute_capability,
            self.precision,
            shape,
        )

    def _activate(self, frame_shape: tuple[int, ...]) -> _Slot:
        """The slot for frames of ``frame_shape``, loading or building its engine if new."""
        n, h, w, _ = frame_shape
        shape = (n, *padded_size(h, w, self._multiple))
        if self._slot is not None and self._slot.shape == shape:
            return self._slot
        # One engine at a time: a new frame size replaces the old engine and its buffers.
        self._release_slot()
        engine = self._load_or_build(self.engine_facts(shape))
        self._slot = self._make_slot(engine, shape)
        return self._slot

    def _load_or_build(self, facts: EngineFacts) -> Any:
        path = self.cache_dir / facts.file_name(self._label)
        plan = read_cached_engine(path, facts)
        if plan is not None:
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is not None:
                _LOG.info("TensorRT engine loaded from %s", path)
                return engine
            _LOG.warning("cached TensorRT engine %s does not deserialise; rebuilding", path)
        elif path.exists():
            _LOG.info("cached TensorRT engine %s is stale or foreign; rebuilding", path)
        plan = self._build(facts.shape)
        try:
            write_cached_engine(path, plan, facts)
        except OSError as exc:  # a full or read-only disk costs a rebuild next time, no more
            _LOG.warning("could not cache the TensorRT engine in %s: %s", path.parent, exc)
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise BackendUnavailableError(
                f"TensorRT built an engine it cannot load ({self._logger.summary()})"
            )
        return engine

    def _parse(self) -> tuple[Any, Any, Any]:
        """Builder, network and parser for ``onnx_path`` (the parser owns the weights)."""
        trt = self._trt
        try:
            builder = trt.Builder(self._logger)
        except TypeError as exc:  # pybind's way of saying the C++ factory returned null
            raise BackendUnavailableError(
                f"{self.flavour} {self.trt_version} cannot create a builder ({exc}; "
                f"{self._logger.summary()})"
            ) from None
        flags = 0
        if self._strongly_typed:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(os.fspath(self.onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BackendUnavailableError(
                f"{self.flavour} {self.trt_version} cannot parse {self.onnx_path.name}: "
                f"{'; '.join(errors) or self._logger.summary()}"
            )
        if network.num_inputs != 1 or network.num_outputs != 1:
            raise BackendUnavailableError(
                f"{self.onnx_path.name}: expected one input and one output, got "
                f"{network.num_inputs} and {network.num_outputs}"
            )
        return builder, network, parser

    def _build(self, shape: tuple[int, int, int]) -> bytes:
        """Serialised engine for padded input ``(N, H, W)``: a profile of exactly that shape."""
        trt = self._trt
        builder, network, _ = self._parsed
        config = builder.create_builder_config()
        if self.precision == "fp16" and not self._strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32, not 10-bit mantissas
        if self._workspace:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self._workspace))
        n, h, w = shape
        dims = (n, 3, h, w)
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, dims, dims, dims)
        config.add_optimization_profile(profile)
        timing_path = self._attach_timing_cache(config)
        _LOG.info("building a TensorRT %s engine for %s at %s", self.precision, self._label, dims)
        self._logger.errors.clear()
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendUnavailableError(
                f"{self.flavour} {self.trt_version} could not build an engine for "
                f"{self.onnx_path.name} at {dims}: {self._logger.summary()}"
            )
        if timing_path is not None:
            self._save_timing_cache(config, timing_path)
        return bytes(plan)

    def _attach_timing_cache(self, config: Any) -> Path | None:
        """Load the persisted timing cache into ``config``; its path, or None if unused.

        TensorRT for RTX ignores timing caches (and using one forces a GPU query during
        ahead-of-time builds), so it gets none.
        """
        if self.flavour != "tensorrt":
            return None
        tag = hashlib.sha256(
            f"{self.trt_version}|{self.gpu_name}|{self.compute_capability}".encode()
        ).hexdigest()[:16]
        path = self.cache_dir / f"timing_{self.flavour}-{self.trt_version}_{tag}.cache"
        try:
            blob = path.read_bytes()
        except OSError:
            blob = b""
        cache = config.create_timing_cache(blob)
        # The file name already pins version and GPU; a mismatch means a damaged file.
        if not config.set_timing_cache(cache, False):
            config.set_timing_cache(config.create_timing_cache(b""), False)
        return path

    def _save_timing_cache(self, config: Any, path: Path) -> None:
        try:
            _write_atomic(path, bytes(config.get_timing_cache().serialize()))
        except (OSError, AttributeError) as exc:
            _LOG.warning("could not save the TensorRT timing cache %s: %s", path, exc)

    def _fp16_source(self, source: Path, given: str | os.PathLike | None) -> Path:
        """The fp16 ONNX file to parse: ``given``, or one converted from ``source`` and cached.

        The cached copy is named by the fp32 file's sha256 and the converter's version, so a
        changed model or converter makes a new one.
        """
        if given is not None:
            path = Path(given)
            if not path.is_file():
                raise BackendUnavailableError(f"fp16 ONNX model file not found: {path}")
            return path
        digest = sha256_of(source)[:16]
        version = fp16_onnx.FP16_CONVERTER_VERSION
        path = self.cache_dir / "onnx" / f"{_slug(self._label)}-{digest}.fp16v{version}.onnx"
        if not path.is_file():
            _LOG.info("converting %s to fp16 for TensorRT: %s", source.name, path)
            fp16_onnx.convert_to_fp16(source, path)
        return path

    def _runtime_cache_path(self, shape: tuple[int, int, int]) -> Path:
        key = self.engine_facts(shape).key()
        return self.cache_dir / f"{_slug(self._label)}_{key}.rtxcache"

    def _make_slot(self, engine: Any, shape: tuple[int, int, int]) -> _Slot:
        trt, cuda = self._trt, self._cuda
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [t for t in names if engine.get_tensor_mode(t) == trt.TensorIOMode.INPUT]
        outputs = [t for t in names if t not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailableError(
                f"TensorRT engine has {len(inputs)} inputs and {len(outputs)} outputs; one each "
                "expected"
            )
        context, runtime_config = self._create_context(engine, shape)
        n, h, w = shape
        if not context.set_input_shape(inputs[0], (n, 3, h, w)):
            raise RuntimeError(f"TensorRT rejected input shape {(n, 3, h, w)}")
        out_shape = tuple(int(d) for d in context.get_tensor_shape(outputs[0]))
        if out_shape != (n, 3, h, w):
            raise BackendUnavailableError(
                f"the model's output shape {out_shape} differs from its input {(n, 3, h, w)}"
            )
        in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(inputs[0])))
        out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(outputs[0])))
        pointers: dict[str, int] = {}
        try:
            host_in = _pinned(cuda, (n, 3, h, w), in_dtype, pointers, "host_in")
            host_out = _pinned(cuda, out_shape, out_dtype, pointers, "host_out")
            pointers["dev_in"] = int(cuda("cudaMalloc", host_in.nbytes))
            pointers["dev_out"] = int(cuda("cudaMalloc", host_out.nbytes))
        except RuntimeError as exc:
            _free(cuda, pointers)
            raise BackendUnavailableError(f"not enough GPU or pinned memory: {exc}") from None
        # Addresses stay in the context: set once per shape, not per frame.
        context.set_tensor_address(inputs[0], pointers["dev_in"])
        context.set_tensor_address(outputs[0], pointers["dev_out"])
        converter = FrameConverter(self._input_range, self._multiple, dtype=in_dtype)
        return _Slot(shape, engine, context, converter, host_in, host_out, pointers, runtime_config)

    def _create_context(self, engine: Any, shape: tuple[int, int, int]) -> tuple[Any, Any]:
        """An execution context; with TensorRT for RTX one backed by a persisted runtime cache.

        TensorRT for RTX compiles kernels just in time when the context is created; its
        runtime cache keeps them across runs. Any failure to set it up only costs startup
        time, so it falls back to a plain context.
        """
        if self.flavour == "tensorrt_rtx" and hasattr(engine, "create_runtime_config"):
            try:
                runtime_config = engine.create_runtime_config()
                cache = runtime_config.create_runtime_cache()
                path = self._runtime_cache_path(shape)
                if path.is_file():
                    cache.deserialize(path.read_bytes())
                runtime_config.set_runtime_cache(cache)
                context = engine.create_execution_context(runtime_config)
                if context is not None:
                    return context, runtime_config
            except (AttributeError, TypeError, RuntimeError, OSError) as exc:
                _LOG.warning("TensorRT-RTX runtime cache unavailable: %s", exc)
        context = engine.create_execution_context()
        if context is None:
            raise BackendUnavailableError(
                f"TensorRT could not create an execution context ({self._logger.summary()})"
            )
        return context, None

    def _save_runtime_cache(self, slot: _Slot) -> None:
        try:
            blob = slot.runtime_config.get_runtime_cache().serialize()
            _write_atomic(self._runtime_cache_path(slot.shape), bytes(blob))
        except (AttributeError, TypeError, RuntimeError, OSError) as exc:
            _LOG.warning("could not save the TensorRT-RTX runtime cache: %s", exc)

    def _release_slot(self) -> None:
        slot, self._slot = self._slot, None
        if slot is None:
            return
        # Drop the numpy views of pinned memory before freeing it, and the context before
        # the engine, as TensorRT requires.
        slot.host_in = slot.host_out = None  # type: ignore[assignment]
        slot.converter = None  # type: ignore[assignment]
        slot.context = None
        slot.runtime_config = None
        slot.engine = None
        _free(self._cuda, slot.pointers)


def _major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match[1]) if match else 0


def _pinned(
    cuda: _Cuda, shape: tuple[int, ...], dtype: np.dtype, pointers: dict[str, int], key: str
) -> np.ndarray:
    """A numpy array over new page-locked host memory (its address kept in ``pointers``)."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    address = int(cuda("cudaMallocHost", nbytes))
    pointers[key] = address
    raw = (ctypes.c_byte * nbytes).from_address(address)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _free(cuda: _Cuda, pointers: dict[str, int]) -> None:
    for key, address in list(pointers.items()):
        call = "cudaFreeHost" if key.startswith("host") else "cudaFree"
        try:
            cuda(call, address)
        except RuntimeError as exc:  # keep freeing the others
            _LOG.warning("%s failed while releasing TensorRT buffers: %s", call, exc)
        del pointers[key]


def _make_logger(trt: ModuleType) -> Any:
    """A TensorRT logger that keeps errors (for exception messages) and forwards the rest."""
    severity = trt.ILogger.Severity

    class _Logger(trt.ILogger):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, level: Any, message: str) -> None:
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                self.errors.append(message)
                _LOG.error("TensorRT: %s", message)
            elif level == severity.WARNING:
                _LOG.warning("TensorRT: %s", message)
            else:
                _LOG.debug("TensorRT: %s", message)

        def summary(self) -> str:
            return "; ".join(self.errors[-5:]) or "no error message from TensorRT"

    return _Logger()
