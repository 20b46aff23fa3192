import numpy as np
import pytest

from engine.backends.base import Backend, BackendUnavailableError
from engine.backends.select import select_backend


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    pytest.importorskip("torch")
    from engine.models import create_model
    from engine.models.export import export_with_card

    path = tmp_path_factory.mktemp("model") / "dsc.onnx"
    return export_with_card(create_model("fpn_mobilenet_dsc"), "fpn_mobilenet_dsc", path)


def _has_gpu():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(_has_gpu(), reason="the fall-back to the CPU is what this checks")
def test_auto_on_a_machine_without_gpu_picks_onnxruntime_cpu_and_says_why(card):
    sel = select_backend(card, "auto")
    assert isinstance(sel.backend, Backend)
    assert (sel.backend.name, sel.backend.device, sel.backend.precision) == (
        "onnxruntime",
        "cpu",
        "fp32",
    )
    labels = [label for label, _ in sel.skipped]
    assert labels == ["TensorRT", "ONNX Runtime CUDA", "torch CUDA"]
    line = sel.describe()
    assert line.startswith("backend: ONNX Runtime CPU (fp32, cpu)")
    assert "tensorrt" in line.lower() and "CUDAExecutionProvider" in line and "GPU" in line
    frames = np.zeros((1, 40, 50, 3), np.uint8)
    assert sel.backend.infer(frames).shape == frames.shape


def test_explicit_backends(card):
    sel = select_backend(card, "torch", device="cpu", cuda_graphs=False)
    assert sel.backend.name == "torch" and sel.skipped == []
    with pytest.raises(BackendUnavailableError, match="TensorRT"):
        select_backend(card, "tensorrt")
    with pytest.raises(ValueError, match="unknown backend"):
        select_backend(card, "openvino")


def test_options_for_one_backend_do_not_break_the_others(card):
    # auto passes one option set down the chain; each backend takes only its own knobs.
    sel = select_backend(card, "auto", cuda_graphs=True, threads=1)
    assert sel.backend.name == "onnxruntime" or _has_gpu()


@pytest.mark.skipif(_has_gpu(), reason="the fall-back to the CPU is what this checks")
def test_auto_skips_backends_that_lack_the_precision_asked_for():
    from engine.resources import resolve_model

    sel = select_backend(resolve_model("fpn_mobilenet_dsc"), "auto", precision="int8")
    try:
        assert (sel.backend.name, sel.backend.precision) == ("onnxruntime", "int8")
        assert "torch CUDA: torch backend precision must be one of" in sel.describe()
    finally:
        sel.backend.close()
    with pytest.raises(BackendUnavailableError, match="ONNX Runtime CPU: precision must be"):
        select_backend(resolve_model("fpn_mobilenet_dsc"), "auto", precision="bf16")
    with pytest.raises(ValueError, match="precision must be"):  # explicit: not a fall-back
        select_backend(resolve_model("fpn_mobilenet_dsc"), "onnxruntime", precision="bf16")
