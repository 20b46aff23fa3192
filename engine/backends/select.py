"""Choosing a backend: an explicit fall-back chain that says what it picked and why."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from engine.backends.base import Backend, BackendUnavailableError
from engine.backends.streams import StreamedBackend
from engine.modelcard import ModelCard

# (label, backend, device, precision) in the order ``auto`` tries them; the CPU's precision
# is decided per model (see ``_with_cpu_int8``).
AUTO_CHAIN = (
    ("TensorRT", "tensorrt", "cuda", "fp16"),
    ("ONNX Runtime CUDA", "onnxruntime", "cuda", "fp16"),
    ("torch CUDA", "torch", "cuda", "fp16"),
    ("ONNX Runtime CPU", "onnxruntime", "cpu", None),
)
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


@dataclass
class Selection:
    """The backend picked and the reasons the ones before it were skipped."""

    backend: Backend
    label: str
    skipped: list[tuple[str, str]]
    note: str = ""

    def describe(self) -> str:
        """One line: what was picked (and why its precision, where it was chosen for the
        user), and why each earlier candidate was skipped."""
        b = self.backend
        streams = getattr(b, "streams", 1)
        where = f"{b.device}, {streams} streams" if streams > 1 else b.device
        line = f"backend: {self.label} ({b.precision}, {where})"
        if self.note:
            line += f"; {self.note}"
        if self.skipped:
            reasons = "; ".join(f"{label}: {why}" for label, why in self.skipped)
            line += f" — skipped {reasons}"
        return line


def _build_onnxruntime(
    card: ModelCard, device: str, precision: str, threads: int | None = None, streams: int = 1
) -> Backend:
    module = importlib.import_module("engine.backends.onnxruntime_backend")

    def make(threads_each: int | None) -> Backend:
        return module.OnnxRuntimeBackend.from_card(
            card, device=device, precision=precision, threads=threads_each
        )

    if int(streams) <= 1 or not device.startswith("cpu"):
        return make(threads)  # a GPU runs one frame at a time faster than it would split
    return StreamedBackend.build(make, int(streams), threads or module.physical_core_count())


def _build_tensorrt(card: ModelCard, device: str, precision: str, **options) -> Backend:
    module = importlib.import_module("engine.backends.tensorrt_backend")
    return module.TensorRTBackend.from_card(card, device=device, precision=precision, **options)


def _build_torch(card: ModelCard, device: str, precision: str, **options) -> Backend:
    # Imported by name: the torch backend is the one engine module allowed to need torch.
    try:
        module = importlib.import_module("engine.backends.torch_backend")
    except ModuleNotFoundError as exc:
        raise BackendUnavailableError(
            f"PyTorch is not installed ({exc.name}); pip install 'rtdeblur[train]'"
        ) from None
    weights = card.weights_path
    if weights is None:
        raise BackendUnavailableError(f"model {card.name!r} ships no PyTorch weights")
    return module.TorchBackend.from_architecture(
        card.architecture, weights, device=device, precision=precision, **options
    )


# The knobs each backend understands; others are dropped, so that ``auto`` can pass one
# option set down a chain of different backends.
_OPTIONS = {
    "onnxruntime": {"threads", "streams"},
    "tensorrt": {"cache_dir", "workspace_bytes"},
    "torch": {"cuda_graphs", "channels_last"},
}

_BUILDERS: dict[str, Callable[..., Backend]] = {
    "onnxruntime": _build_onnxruntime,
    "tensorrt": _build_tensorrt,
    "torch": _build_torch,
}


def _fp16_fallback(backend: str, card: ModelCard, precision: str) -> str:
    # ONNX Runtime needs an fp16 file for fp16; without one it runs the fp32 graph.
    if backend == "onnxruntime" and precision == "fp16" and card.onnx_fp16 is None:
        return "fp32"
    return precision


def cpu_int8_note(card: ModelCard) -> str | None:
    """Why ONNX Runtime on the CPU runs ``card`` in INT8 by default, or None when it does not.

    It does when the card records a measurement of the INT8 file beside it that costs at
    most ``INT8_MAX_COST_DB`` of PSNR against fp32 on the validation set (see
    ``engine.backends.onnxruntime_backend.validated_int8``).
    """
    module = importlib.import_module("engine.backends.onnxruntime_backend")
    entry = module.validated_int8(card)
    if entry is None:
        return None
    images = entry.get("images")
    on = f"{images} validation images" if images else "the validation set"
    return f"int8 costs {entry['psnr_cost']:.2f} dB PSNR against fp32 on {on}"


def _with_cpu_int8(
    chain: list[tuple[str, str, str, str | None]], card: ModelCard
) -> tuple[list[tuple[str, str, str, str]], str]:
    """The chain with no precision left open, and the note of a default INT8.

    An ONNX Runtime CPU entry of no set precision becomes INT8 then fp32 (INT8 tried first)
    when the card's INT8 file qualifies, else fp32; any other open precision becomes fp32.
    """
    out: list[tuple[str, str, str, str]] = []
    note = ""
    for label, name, dev, prec in chain:
        if prec is None and name == "onnxruntime" and dev.startswith("cpu"):
            why = cpu_int8_note(card)
            if why:
                note = why
                out.append((label, name, dev, "int8"))
        out.append((label, name, dev, prec or "fp32"))
    return out, note


def select_backend(
    card: ModelCard,
    backend: str = "auto",
    device: str | None = None,
    precision: str | None = None,
    **options,
) -> Selection:
    """Build the requested backend, or with ``"auto"`` the first that works on this machine.

    ``auto`` walks TensorRT → ONNX Runtime CUDA → torch CUDA → ONNX Runtime CPU; each
    candidate that cannot run raises :class:`BackendUnavailableError`, whose message is kept
    as the reason it was skipped.

    Args:
        card: the model to run.
        backend: ``"auto"``, ``"tensorrt"``, ``"onnxruntime"`` or ``"torch"``.
        device: ``"cpu"`` or ``"cuda[:N]"`` for an explicit backend (default: its usual one).
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"int8"`` (default: fp16 on a GPU;
            on the CPU, INT8 for ONNX Runtime when the card measured its INT8 file within
            ``INT8_MAX_COST_DB`` of fp32, falling back to fp32, and fp32 otherwise).
        **options: backend knobs passed through (e.g. ``cuda_graphs`` for torch, ``threads``
            and ``streams`` for ONNX Runtime: ``streams`` > 1 on the CPU runs the frames of a
            batch side by side on that many sessions sharing the threads).

    Returns:
        The :class:`Selection`.

    Raises:
        BackendUnavailableError: an explicit backend cannot run, or (``auto``) none can,
            with every reason.
        ValueError: unknown backend name.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        wanted = [(lbl, b, device or d, precision or p) for lbl, b, d, p in AUTO_CHAIN]
    else:
        default_device = "cpu" if backend == "onnxruntime" else "cuda"
        dev = device or default_device
        prec = precision or (None if dev == "cpu" else "fp16")
        label = {"onnxruntime": "ONNX Runtime", "tensorrt": "TensorRT", "torch": "torch"}[backend]
        wanted = [(f"{label} {'CPU' if dev == 'cpu' else 'CUDA'}", backend, dev, prec)]
    chain, note = _with_cpu_int8(wanted, card)
    skipped: list[tuple[str, str]] = []
    for label, name, dev, prec in chain:
        chosen_int8 = bool(note) and prec == "int8"  # tried first; fp32 follows if it fails
        try:
            own = {k: v for k, v in options.items() if k in _OPTIONS[name]}
            built = _BUILDERS[name](card, dev, _fp16_fallback(name, card, prec), **own)
        except BackendUnavailableError as exc:
            skipped.append((f"{label} int8" if chosen_int8 else label, str(exc)))
            continue
        except ValueError as exc:
            if backend != "auto" and not chosen_int8:
                raise
            # e.g. a precision this backend lacks, or an INT8 file of other weights
            skipped.append((f"{label} int8" if chosen_int8 else label, str(exc)))
            continue
        return Selection(built, label, skipped, note if chosen_int8 else "")
    reasons = "; ".join(f"{label}: {why}" for label, why in skipped)
    raise BackendUnavailableError(f"no backend can run model {card.name!r} here ({reasons})")
