"""OnnxRuntimeBackend against the PyTorch networks it was exported from, and INT8 quantisation."""

import os
from pathlib import Path

import numpy as np
import pytest

from engine.backends.base import Backend, BackendUnavailableError
from engine.backends.onnxruntime_backend import (
    INT8_SOURCE_KEY,
    OnnxRuntimeBackend,
    _count_physical_cores,
    physical_core_count,
)
from engine.modelcard import ModelCard, ModelCardError, sha256_of

torch = pytest.importorskip("torch")

from engine.models import create_model, get_spec  # noqa: E402
from training.export import export_onnx  # noqa: E402

PHOTOS = Path(__file__).parents[3].parent / "shared/data" / "photos"
PARITY_MODELS = ["fpn_mobilenet_dsc", "mimo_unet"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(torch model, onnx path) per model name, built once per test module."""
    folder = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            model = create_model(name).eval()
            cache[name] = (model, export_onnx(model, folder / f"{name}.onnx"))
        return cache[name]

    return get


def _backend(name, path, **kwargs):
    spec = get_spec(name)
    return OnnxRuntimeBackend(path, spec.input_range, spec.multiple, **kwargs)


def _frames(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _torch_reference(name, model, frames):
    """The test's own pre/post: scale to range, model (pads itself), back, clamp, round."""
    lo, hi = get_spec(name).input_range
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() * ((hi - lo) / 255.0) + lo
    with torch.no_grad():
        y = model(x)
    y = (y - lo) * (255.0 / (hi - lo))
    return y.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _max_diff(a, b):
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("shape", [(1, 97, 131), (2, 360, 640)], ids=["1x97x131", "2x360x640"])
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_matches_pytorch_within_one_level(name, shape, exported):
    model, path = exported(name)
    frames = _frames(*shape)
    backend = _backend(name, path, threads=2)
    got = backend.infer(frames)
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert _max_diff(got, _torch_reference(name, model, frames)) <= 1


def test_follows_the_backend_protocol(exported):
    _, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path)
    assert isinstance(backend, Backend)
    assert (backend.name, backend.device, backend.precision) == ("onnxruntime", "cpu", "fp32")


def test_session_options_are_set_for_latency(exported):
    _, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path)
    options = backend.session.get_session_options()
    assert options.intra_op_num_threads == physical_core_count() == backend.threads
    assert options.inter_op_num_threads == 1
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == "0"


@pytest.mark.parametrize("size", [(97, 131), (64, 64), (33, 70)])
def test_odd_and_aligned_sizes_come_back_with_the_input_shape(size, exported):
    model, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path, threads=2)
    frames = _frames(1, *size, seed=3)
    got = backend.infer(frames)
    assert got.shape == frames.shape
    assert _max_diff(got, _torch_reference("fpn_mobilenet_dsc", model, frames)) <= 1


def test_same_shape_reuses_the_output_buffer_and_a_new_shape_is_correct(exported):
    model, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path, threads=2)
    first = backend.infer(_frames(1, 64, 96, seed=1))
    address = first.__array_interface__["data"][0]
    second_frames = _frames(1, 64, 96, seed=2)
    second = backend.infer(second_frames)
    assert np.shares_memory(first, second)
    assert second.__array_interface__["data"][0] == address
    # The reused buffer holds the second batch's result, not a stale one.
    ref = _torch_reference("fpn_mobilenet_dsc", model, second_frames)
    assert _max_diff(second, ref) <= 1

    other = _frames(2, 97, 131, seed=4)
    third = backend.infer(other)
    assert third.shape == other.shape
    assert _max_diff(third, _torch_reference("fpn_mobilenet_dsc", model, other)) <= 1


def test_warmup_allocates_for_the_shape_it_is_given(exported):
    _, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path, threads=2)
    backend.warmup((1, 64, 64, 3))
    warm = backend.infer(np.zeros((1, 64, 64, 3), np.uint8))
    again = backend.infer(_frames(1, 64, 64))
    assert np.shares_memory(warm, again)


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((1, 64, 64, 3), np.float32),
        np.zeros((64, 64, 3), np.uint8),
        np.zeros((1, 64, 64, 4), np.uint8),
        np.zeros((1, 3, 64, 64), np.uint8),
        np.zeros((0, 64, 64, 3), np.uint8),
        [[0, 0, 0]],
    ],
    ids=["float32", "no-batch", "4-channels", "nchw", "empty", "list"],
)
def test_bad_input_raises_value_error(frames, exported):
    _, path = exported("fpn_mobilenet_dsc")
    backend = _backend("fpn_mobilenet_dsc", path)
    with pytest.raises(ValueError):
        backend.infer(frames)


def test_close_releases_the_session(exported):
    _, path = exported("fpn_mobilenet_dsc")
    with _backend("fpn_mobilenet_dsc", path) as backend:
        backend.infer(_frames(1, 32, 32))
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(_frames(1, 32, 32))


def test_missing_model_file_names_the_path(tmp_path):
    path = tmp_path / "absent.onnx"
    with pytest.raises(BackendUnavailableError, match=r"absent\.onnx"):
        OnnxRuntimeBackend(path, (0.0, 1.0), 8)


def test_corrupt_model_file_names_the_path(tmp_path, exported):
    _, good = exported("fpn_mobilenet_dsc")
    path = tmp_path / "broken.onnx"
    path.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(BackendUnavailableError, match=r"broken\.onnx") as info:
        OnnxRuntimeBackend(path, (-1.0, 1.0), 32)
    assert str(path) in str(info.value)


def test_cuda_without_the_provider_names_it(exported):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    _, path = exported("fpn_mobilenet_dsc")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider") as info:
        _backend("fpn_mobilenet_dsc", path, device="cuda")
    assert "onnxruntime-gpu" in str(info.value)


def test_bad_device_or_precision_is_a_value_error(exported):
    _, path = exported("fpn_mobilenet_dsc")
    with pytest.raises(ValueError, match="device"):
        _backend("fpn_mobilenet_dsc", path, device="gpu")
    with pytest.raises(ValueError, match="precision"):
        _backend("fpn_mobilenet_dsc", path, precision="bf16")


def test_physical_core_count_is_within_the_logical_count():
    assert 1 <= physical_core_count() <= os.cpu_count()


def test_physical_cores_count_smt_siblings_once():
    cpuinfo = "".join(
        f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu % 2}\n\n" for cpu in range(4)
    )
    assert _count_physical_cores(cpuinfo) == 2
    assert _count_physical_cores(cpuinfo, allowed={0, 2}) == 1
    assert _count_physical_cores("processor\t: 0\nmodel name\t: arm\n") == 0


def _card(tmp_path, name, path):
    spec = get_spec(name)
    card = ModelCard(
        name=name,
        architecture=name,
        version="0",
        input_range=list(spec.input_range),
        multiple=spec.multiple,
        onnx=path.name,
        sha256=sha256_of(path),
    )
    card.save(tmp_path / f"{name}.json")
    return card


def test_from_card_verifies_the_file_and_loads_it(tmp_path, exported):
    _, src = exported("fpn_mobilenet_dsc")
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes())
    card = _card(tmp_path, "fpn_mobilenet_dsc", path)
    backend = OnnxRuntimeBackend.from_card(card, threads=1)
    assert backend.infer(_frames(1, 40, 40)).shape == (1, 40, 40, 3)
    with pytest.raises(BackendUnavailableError, match="fp16"):
        OnnxRuntimeBackend.from_card(card, precision="fp16")
    with pytest.raises(BackendUnavailableError, match=r"fpn_mobilenet_dsc\.int8\.onnx"):
        OnnxRuntimeBackend.from_card(card, precision="int8")
    path.write_bytes(src.read_bytes() + b"\0")
    with pytest.raises(ModelCardError, match="does not match"):
        OnnxRuntimeBackend.from_card(card)


@pytest.fixture(scope="module")
def photos():
    train, val = PHOTOS / "train", PHOTOS / "val"
    if not train.is_dir() or not val.is_dir():
        pytest.skip(f"real photos not found under {PHOTOS}")
    return train, val


def test_int8_quantisation_on_real_photos(tmp_path, exported, photos, capsys):
    onnx = pytest.importorskip("onnx")
    from engine.backends.quantize import int8_accuracy, list_images, quantize_int8, spread

    train, val = photos
    name = "fpn_mobilenet_dsc"
    spec = get_spec(name)
    _, fp32 = exported(name)
    dst = tmp_path / f"{name}.int8.onnx"
    calibration = spread(list_images(train), 4)
    written = quantize_int8(
        fp32,
        dst,
        calibration,
        spec.input_range,
        spec.multiple,
        size=(128, 128),
        max_images=4,
        chunk=2,  # two chunks of two photos: ranges merged across them
    )
    assert written == dst and dst.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no temporary file left behind

    graph = onnx.load(dst).graph
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) > 0
    # The FPN's seven nearest upsamplings are block copies, and no shape is read from a
    # dequantised tensor (see engine.backends.int8_layout).
    assert not [node for node in graph.node if node.op_type == "Resize"]
    producers = {out: node.op_type for node in graph.node for out in node.output}
    shapes = [node for node in graph.node if node.op_type == "Shape"]
    assert shapes and all(producers.get(n.input[0]) != "DequantizeLinear" for n in shapes)
    # The pixel shuffle of the final layer moves quantised values.
    (shuffle,) = [n for n in graph.node if n.op_type == "DepthToSpace"]
    assert producers.get(shuffle.input[0]) != "DequantizeLinear"
    # The first convolution (3 input channels) and its padding stay in float: the image is
    # padded and convolved without a round trip through 8 bits.
    (first,) = [n for n in graph.node if n.name == "/backbone/features.0/features.0.0/Conv"]
    assert producers.get(first.input[0]) == "Pad"
    assert producers.get(first.input[1]) != "DequantizeLinear"  # float weights
    (pad,) = [n for n in graph.node if n.name == "/Pad"]
    assert pad.input[0] == graph.input[0].name
    # Every concatenation copies: its inputs are quantised on its output's grid (the heads'
    # concatenation and the final layer's phases included).
    values = {i.name: onnx.numpy_helper.to_array(i).item() for i in graph.initializer
              if i.dims == [] or list(i.dims) == [1]}  # fmt: skip
    by_output = {out: node for node in graph.node for out in node.output}
    readers = {name: node for node in graph.node for name in node.input}
    concats = [n for n in graph.node if n.op_type == "Concat" and n.output[0] in readers]
    checked = 0
    for concat in concats:
        out_q = readers[concat.output[0]]
        dqs = [by_output.get(name) for name in concat.input]
        if out_q.op_type != "QuantizeLinear" or any(
            dq is None or dq.op_type != "DequantizeLinear" for dq in dqs
        ):
            continue  # shape arithmetic
        grids = {(values[dq.input[1]], values[dq.input[2]]) for dq in dqs}
        assert grids == {(values[out_q.input[1]], values[out_q.input[2]])}, concat.name
        checked += 1
    assert checked >= 2 + 2 * 7  # heads, phases, and the copies of seven upsamplings

    backend = _backend(name, dst, precision="int8", threads=2)
    frames = _frames(2, 97, 131)
    out = backend.infer(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8

    held_out = spread(list_images(val), 2)
    result = int8_accuracy(fp32, dst, held_out, spec.input_range, spec.multiple, (128, 128))
    assert result["images"] == 2
    # Random weights: the value says nothing about trained quality, only that it is measured.
    assert np.isfinite(result["psnr_mean"]) and np.isfinite(result["psnr_min"])
    assert 0 <= result["max_abs_diff"] <= 255
    with capsys.disabled():
        print(f"\n  int8 vs fp32 ({name}, random weights, 128x128): {result}")


def test_int8_from_card_finds_the_file_beside_it_and_checks_its_source(tmp_path, exported, photos):
    onnx = pytest.importorskip("onnx")
    from engine.backends.quantize import quantize_int8

    train, _ = photos
    name = "fpn_mobilenet_dsc"
    _, src = exported(name)
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes())
    card = _card(tmp_path, name, path)
    spec = get_spec(name)
    quantize_int8(
        path,
        tmp_path / f"{name}.int8.onnx",
        train,
        spec.input_range,
        spec.multiple,
        size=(64, 64),
        max_images=2,
        method="minmax",
    )
    backend = OnnxRuntimeBackend.from_card(card, precision="int8", threads=1)
    assert backend.precision == "int8"
    assert backend.infer(_frames(1, 64, 64)).shape == (1, 64, 64, 3)
    backend.close()
    # New fp32 weights under the same name: the INT8 file of the old ones is refused.
    retrained = tmp_path / "retrained.onnx"
    retrained.write_bytes(src.read_bytes() + b"\0")
    newer = _card(tmp_path, name, retrained)
    with pytest.raises(ModelCardError, match="quantised from another fp32 file"):
        OnnxRuntimeBackend.from_card(newer, precision="int8", threads=1)
    # An INT8 file that does not say where it came from is refused too.
    card = _card(tmp_path, name, path)
    int8 = tmp_path / f"{name}.int8.onnx"
    model = onnx.load(int8)
    recorded = {p.key: p.value for p in model.metadata_props}
    assert recorded[INT8_SOURCE_KEY] == sha256_of(path)
    kept = [p for p in model.metadata_props if p.key != INT8_SOURCE_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, int8)
    with pytest.raises(ModelCardError, match="does not record which fp32 file"):
        OnnxRuntimeBackend.from_card(card, precision="int8", threads=1)


def test_a_rewrite_that_changes_the_output_is_not_used(tmp_path, exported, photos, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from engine.backends import int8_layout
    from engine.backends.quantize import FrameCalibrationReader, _prepare

    original = int8_layout.nearest_upsampling_as_copies

    def broken(model):
        # Rewrites as usual, then doubles a weight: the check must catch the difference.
        count = original(model)
        init = next(i for i in model.graph.initializer if len(i.dims) == 4)
        array = onnx.numpy_helper.to_array(init) * 2
        init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
        return count

    _, src = exported("fpn_mobilenet_dsc")
    spec = get_spec("fpn_mobilenet_dsc")
    train, _ = photos
    name = onnx.load(src).graph.input[0].name
    images = sorted(train.iterdir())[:1]
    reader = FrameCalibrationReader(images, name, spec.input_range, spec.multiple, (64, 64))
    in_float_want = ["/backbone/features.0/features.0.0/Conv", "/Pad"]  # and its padding
    path, in_float = _prepare(src, tmp_path / "copies.onnx", reader)
    assert path == tmp_path / "copies.onnx" and in_float == in_float_want
    assert "Resize" not in [node.op_type for node in onnx.load(path).graph.node]
    monkeypatch.setattr(int8_layout, "nearest_upsampling_as_copies", broken)
    with pytest.warns(RuntimeWarning, match="changed the model's output"):
        path, in_float = _prepare(src, tmp_path / "broken.onnx", reader)
    kept = onnx.load(path)
    assert onnx.load(src).graph.node == kept.graph.node  # quantised as it was
    assert kept.graph.initializer == onnx.load(src).graph.initializer
    assert in_float == in_float_want
    assert reader.get_next() is not None  # the check gave its frame back


def test_the_calibration_reader_gives_ranges_of_photos(photos):
    from engine.backends.quantize import FrameCalibrationReader, _chunk_size, list_images

    train, _ = photos
    images = list_images(train)[:5]
    reader = FrameCalibrationReader(images, "x", (-1.0, 1.0), 32, (32, 48))
    assert len(reader) == 5

    def count():
        n = 0
        while (item := reader.get_next()) is not None:
            assert item["x"].shape == (1, 3, 32, 64)  # 48 padded to the multiple of 32
            n += 1
        return n

    reader.set_range(1, 3)
    assert count() == 2
    reader.set_range(4, 99)
    assert count() == 1
    reader.rewind()
    assert count() == 5
    assert [_chunk_size(n, 8) for n in (1, 4, 32, 44, 37, 64)] == [1, 4, 8, 4, 1, 8]
