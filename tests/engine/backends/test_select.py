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


PHOTOS = __import__("pathlib").Path(__file__).resolve().parents[4] / "shared" / "data" / "photos"


@pytest.fixture(scope="module")
def int8_card(card, tmp_path_factory):
    """A copy of ``card`` with an INT8 file beside it (2 photos, 64×64, min/max ranges)."""
    pytest.importorskip("onnx")
    import shutil

    from engine.backends.onnxruntime_backend import int8_path_for
    from engine.backends.quantize import quantize_int8
    from engine.modelcard import load_card

    if not (PHOTOS / "train").is_dir():
        pytest.skip(f"real photos not found under {PHOTOS}")
    folder = tmp_path_factory.mktemp("int8")
    shutil.copy(card.onnx_path, folder / card.onnx)
    shutil.copy(card.weights_path, folder / card.weights)
    copy = load_card(card.save(folder / "dsc.json"))
    range_ = (float(card.input_range[0]), float(card.input_range[1]))
    quantize_int8(
        copy.onnx_path,
        int8_path_for(copy),
        PHOTOS / "train",
        range_,
        copy.multiple,
        size=(64, 64),
        max_images=2,
        method="minmax",
    )
    return copy


def _measured(card, cost=0.1, sha=None):
    """``card`` with an INT8 measurement as ``rtdeblur export --int8`` records it."""
    import dataclasses

    from engine.backends.onnxruntime_backend import int8_path_for
    from engine.modelcard import sha256_of

    entry = {"sha256": sha or sha256_of(int8_path_for(card)), "psnr_cost": cost, "images": 152}
    return dataclasses.replace(card, metrics={"psnr": 25.0, "int8": entry}, path=card.path)


@pytest.mark.skipif(_has_gpu(), reason="the CPU's default precision is what this checks")
def test_the_cpu_runs_a_measured_int8_file_by_default_and_says_what_it_costs(int8_card):
    card = _measured(int8_card, cost=0.12)
    note = "int8 costs 0.12 dB PSNR against fp32 on 152 validation images"
    for sel in (select_backend(card, "auto"), select_backend(card, "onnxruntime", streams=2)):
        try:
            assert (sel.backend.name, sel.backend.precision) == ("onnxruntime", "int8")
            assert note in sel.describe() and "int8" not in [label for label, _ in sel.skipped]
        finally:
            sel.backend.close()
    sel = select_backend(card, "onnxruntime", streams=2)
    assert sel.describe().startswith(f"backend: ONNX Runtime CPU (int8, cpu, 2 streams); {note}")
    sel.backend.close()
    # Asked for, fp32 stays fp32; torch has no INT8 file to run.
    for sel in (
        select_backend(card, "onnxruntime", precision="fp32"),
        select_backend(card, "torch", device="cpu"),
    ):
        assert sel.backend.precision == "fp32" and "int8" not in sel.describe()
        sel.backend.close()


@pytest.mark.parametrize("why", ["over the limit", "another file", "not measured"])
def test_int8_is_not_the_default_unless_its_measurement_holds(int8_card, why):
    card = {
        "over the limit": lambda: _measured(int8_card, cost=0.21),
        "another file": lambda: _measured(int8_card, sha="0" * 64),
        "not measured": lambda: int8_card,
    }[why]()
    sel = select_backend(card, "onnxruntime")
    assert (sel.backend.precision, sel.note, sel.skipped) == ("fp32", "", [])
    sel.backend.close()


def test_an_int8_file_of_other_weights_falls_back_to_fp32_and_says_why(int8_card):
    import dataclasses

    card = dataclasses.replace(_measured(int8_card), sha256="f" * 64, path=int8_card.path)
    card.verify = lambda fp16=False: card.onnx_path  # the fp32 file "matches" the new sha
    sel = select_backend(card, "onnxruntime")
    assert sel.backend.precision == "fp32" and sel.note == ""
    ((label, why),) = sel.skipped
    assert label == "ONNX Runtime CPU int8" and "quantised from another fp32 file" in why
    assert sel.describe().startswith("backend: ONNX Runtime CPU (fp32, cpu) — skipped ONNX")
    sel.backend.close()


def test_the_precision_menu_puts_the_default_first(int8_card):
    from app.backend_choices import BackendChoice, precisions_for

    cpu = BackendChoice("onnxruntime-cpu", "ONNX Runtime · CPU", "onnxruntime", "cpu")
    assert precisions_for(cpu, _measured(int8_card)) == ["int8", "fp32"]
    assert precisions_for(cpu, _measured(int8_card, cost=0.5)) == ["fp32", "int8"]
    assert precisions_for(cpu, None) == ["fp32"]
