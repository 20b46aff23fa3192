"""The backends and precisions this machine can offer, for the side panel's menus.

Only what can run here is listed: ONNX Runtime on the CPU always; its CUDA provider when the
installed build has one; PyTorch when it is installed (CUDA only on a machine with an NVIDIA
driver); TensorRT when it is installed and there is an NVIDIA driver. Nothing heavy is
imported to find out (torch and TensorRT are looked up, not loaded).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass

from engine.modelcard import ModelCard


@dataclass(frozen=True)
class BackendChoice:
    """One entry of the backend menu.

    Attributes:
        key: stored in the settings (``auto``, ``onnxruntime-cpu``…).
        label: shown to the user.
        backend: the name ``select_backend`` takes.
        device: ``cpu``, ``cuda`` or ``None`` (auto).
    """

    key: str
    label: str
    backend: str
    device: str | None


AUTO = BackendChoice("auto", "Auto (fastest available)", "auto", None)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded (without initialising CUDA)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def onnxruntime_providers() -> list[str]:
    """The execution providers of the installed ONNX Runtime build."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def available_backend_choices() -> list[BackendChoice]:
    """The backends offered on this machine, ``Auto`` first."""
    choices = [AUTO]
    providers = onnxruntime_providers()
    if providers:
        choices.append(BackendChoice("onnxruntime-cpu", "ONNX Runtime · CPU", "onnxruntime", "cpu"))
    if "CUDAExecutionProvider" in providers:
        choices.append(
            BackendChoice("onnxruntime-cuda", "ONNX Runtime · CUDA", "onnxruntime", "cuda")
        )
    gpu = nvidia_driver_present()
    if _has_module("torch"):
        choices.append(BackendChoice("torch-cpu", "PyTorch · CPU", "torch", "cpu"))
        if gpu:
            choices.append(BackendChoice("torch-cuda", "PyTorch · CUDA", "torch", "cuda"))
    if gpu and (_has_module("tensorrt") or _has_module("tensorrt_rtx")):
        choices.append(BackendChoice("tensorrt", "TensorRT · CUDA", "tensorrt", "cuda"))
    return choices


def choice_for(key: str, choices: list[BackendChoice]) -> BackendChoice:
    """The choice stored as ``key``, or ``Auto``."""
    return next((c for c in choices if c.key == key), AUTO)


def precisions_for(choice: BackendChoice, card: ModelCard | None) -> list[str]:
    """Precisions the choice can run ``card`` at, the default first (empty for ``Auto``)."""
    if choice.backend == "auto":
        return []
    if choice.backend == "onnxruntime":
        if choice.device == "cpu":
            if card is None or not _int8_file(card):
                return ["fp32"]
            return ["int8", "fp32"] if _int8_default(card) else ["fp32", "int8"]
        found = ["fp16"] if card is not None and card.onnx_fp16 else []
        return [*found, "fp32"]
    if choice.backend == "torch":
        return ["fp32"] if choice.device == "cpu" else ["fp16", "bf16", "fp32"]
    return ["fp16", "fp32"]


def _int8_file(card: ModelCard) -> bool:
    from engine.backends.onnxruntime_backend import int8_path_for

    return int8_path_for(card).is_file()


def _int8_default(card: ModelCard) -> bool:
    from engine.backends.onnxruntime_backend import validated_int8

    return validated_int8(card) is not None
