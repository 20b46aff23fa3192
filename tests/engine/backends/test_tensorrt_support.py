"""TensorRT support that runs without a GPU: engine cache, fp16 ONNX, and the backend's logic.

No NVIDIA stack is installed here, so the backend itself runs against small fakes of the
``tensorrt`` and ``cuda-python`` APIs it uses (the fake "engine" runs the ONNX file with ONNX
Runtime on the CPU); the real thing must be checked on a GPU machine.
"""

# The fakes keep cuda-python's and TensorRT's own (camelCase) names.
# ruff: noqa: N802, N815

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from engine.backends.base import Backend, BackendUnavailableError
from engine.backends.tensorrt_backend import (
    ENGINE_CACHE_ENV,
    EngineFacts,
    TensorRTBackend,
    default_engine_cache_dir,
    engine_cache_key,
    engine_cache_path,
    read_cached_engine,
    sidecar_matches,
    sidecar_path,
    write_cached_engine,
)

PHOTOS = Path(__file__).parents[3].parent / "shared/data/photos/val"

FACTS = {
    "onnx_sha256": "ab" * 32,
    "flavour": "tensorrt",
    "trt_version": "10.13.0.35",
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9",
    "precision": "fp16",
    "shape": (1, 736, 1280),
}
# One other value per fact: each alone must change the key.
CHANGED = {
    "onnx_sha256": "cd" * 32,
    "flavour": "tensorrt_rtx",
    "trt_version": "10.13.2.6",
    "gpu_name": "NVIDIA GeForce RTX 4080",
    "compute_capability": "9.0",
    "precision": "fp32",
    "shape": (2, 736, 1280),
}


# -- engine cache key and sidecar --------------------------------------------------------------


def test_same_facts_give_the_same_key_and_path(tmp_path):
    assert engine_cache_key(**FACTS) == engine_cache_key(**FACTS)
    # Equivalent spellings normalise to one key.
    same = {
        **FACTS,
        "compute_capability": (8, 9),
        "onnx_sha256": "AB" * 32,
        "shape": [1, 736, 1280],
    }
    assert engine_cache_key(**same) == engine_cache_key(**FACTS)
    path = engine_cache_path(**FACTS, name="fpn mobilenet/dsc", cache_dir=tmp_path)
    assert path == engine_cache_path(**FACTS, name="fpn mobilenet/dsc", cache_dir=tmp_path)
    assert path.parent == tmp_path
    assert path.name.startswith("fpn-mobilenet-dsc_fp16_1x736x1280_tensorrt-10.13.0.35_sm89_")
    assert path.name.endswith(engine_cache_key(**FACTS) + ".engine")


@pytest.mark.parametrize("fact", sorted(CHANGED))
def test_each_invalidating_fact_changes_key_and_path(fact, tmp_path):
    changed = {**FACTS, fact: CHANGED[fact]}
    assert engine_cache_key(**changed) != engine_cache_key(**FACTS)
    assert engine_cache_path(**changed, cache_dir=tmp_path) != engine_cache_path(
        **FACTS, cache_dir=tmp_path
    )


def test_keys_of_all_single_changes_are_distinct():
    keys = {engine_cache_key(**FACTS)} | {
        engine_cache_key(**{**FACTS, k: v}) for k, v in CHANGED.items()
    }
    assert len(keys) == 1 + len(CHANGED)


@pytest.mark.parametrize(
    ("fact", "bad"),
    [
        ("onnx_sha256", "not-a-hash"),
        ("flavour", "onnxruntime"),
        ("precision", "int8"),
        ("compute_capability", "sm89"),
        ("shape", (1, 0, 1280)),
        ("gpu_name", "  "),
    ],
)
def test_malformed_facts_are_refused(fact, bad):
    with pytest.raises(ValueError):
        engine_cache_key(**{**FACTS, fact: bad})


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(ENGINE_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_engine_cache_dir() == tmp_path / "xdg" / "rtdeblur" / "engines"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_engine_cache_dir() == Path.home() / ".cache" / "rtdeblur" / "engines"
    monkeypatch.setenv(ENGINE_CACHE_ENV, str(tmp_path / "mine"))
    assert default_engine_cache_dir() == tmp_path / "mine"
    assert engine_cache_path(**FACTS).parent == tmp_path / "mine"


def test_cached_engine_round_trip_and_atomic_files(tmp_path):
    facts = EngineFacts.create(**FACTS)
    path = engine_cache_path(**FACTS, cache_dir=tmp_path / "engines")
    write_cached_engine(path, b"serialised engine", facts)
    assert sidecar_matches(path, facts)
    assert read_cached_engine(path, facts) == b"serialised engine"
    record = json.loads(sidecar_path(path).read_text())
    assert record["facts"]["gpu_name"] == FACTS["gpu_name"]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, sidecar_path(path).name]
    )


@pytest.mark.parametrize("fact", sorted(CHANGED))
def test_foreign_sidecar_does_not_match(fact, tmp_path):
    # An engine copied from another machine, ONNX, TensorRT, precision or shape, under the
    # name this backend looks for, must be rebuilt and not loaded.
    path = tmp_path / "model.engine"
    write_cached_engine(path, b"engine", EngineFacts.create(**{**FACTS, fact: CHANGED[fact]}))
    facts = EngineFacts.create(**FACTS)
    assert not sidecar_matches(path, facts)
    assert read_cached_engine(path, facts) is None


def test_stale_or_damaged_cache_entries_are_not_loaded(tmp_path):
    facts = EngineFacts.create(**FACTS)
    path = tmp_path / "model.engine"
    assert read_cached_engine(path, facts) is None  # nothing there
    path.write_bytes(b"engine without sidecar")
    assert not sidecar_matches(path, facts)

    write_cached_engine(path, b"engine", facts)
    path.write_bytes(b"enGine")  # same size, other content: the recorded sha256 differs
    assert sidecar_matches(path, facts) and read_cached_engine(path, facts) is None
    path.write_bytes(b"eng")  # truncated
    assert read_cached_engine(path, facts) is None

    write_cached_engine(path, b"engine", facts)
    record = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps({**record, "sidecar_version": 0}))
    assert not sidecar_matches(path, facts)
    sidecar_path(path).write_text("{not json")
    assert not sidecar_matches(path, facts)


# -- the backend on this machine ---------------------------------------------------------------


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.skipif(_have("tensorrt") or _have("tensorrt_rtx"), reason="TensorRT is installed here")
def test_backend_without_tensorrt_names_what_to_install(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not needed: the library check comes first")
    with pytest.raises(BackendUnavailableError, match="tensorrt") as info:
        TensorRTBackend(model, (0.0, 1.0), 8)
    message = str(info.value)
    assert "tensorrt_rtx" in message and "pip install tensorrt" in message


def test_backend_refuses_cpu_device_and_unknown_precision(tmp_path):
    with pytest.raises(ValueError, match="cuda"):
        TensorRTBackend(tmp_path / "m.onnx", (0.0, 1.0), 8, device="cpu")
    with pytest.raises(ValueError, match="precision"):
        TensorRTBackend(tmp_path / "m.onnx", (0.0, 1.0), 8, precision="int8")


# -- the backend against fakes of tensorrt and cuda-python ------------------------------------


class FakeCudart(types.ModuleType):
    """The cuda-python runtime calls the backend makes; "device" memory is host memory."""

    cudaStreamNonBlocking = 1

    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, gpus: int = 1) -> None:
        super().__init__("cuda.bindings.runtime")
        self.gpus = gpus
        self.live: dict[int, ctypes.Array] = {}
        self.allocations = 0
        self.copies: list[int] = []

    def cudaGetDeviceCount(self):
        return (0, self.gpus) if self.gpus else (35, None)

    def cudaGetErrorName(self, err):
        return 0, b"cudaErrorInsufficientDriver"

    def cudaGetErrorString(self, err):
        return 0, b"CUDA driver version is insufficient for CUDA runtime version"

    def cudaSetDevice(self, index):
        return (0,)

    def cudaGetDeviceProperties(self, index):
        return 0, types.SimpleNamespace(name=b"Fake RTX 9000\0\0\0", major=8, minor=9)

    def cudaStreamCreateWithFlags(self, flags):
        return 0, 77

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaStreamDestroy(self, stream):
        return (0,)

    def _alloc(self, nbytes):
        buf = (ctypes.c_byte * nbytes)()
        self.live[ctypes.addressof(buf)] = buf
        self.allocations += 1
        return 0, ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc

    def _free(self, address):
        return (0,) if self.live.pop(address, None) is not None else (1,)

    cudaFree = cudaFreeHost = _free

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        assert dst in self.live and src in self.live  # pinned host ↔ device, nothing else
        ctypes.memmove(dst, src, count)
        self.copies.append(kind)
        return (0,)


def _fake_tensorrt(version: str = "10.13.0.35") -> types.ModuleType:
    """A ``tensorrt`` module whose engines run the parsed ONNX file with ONNX Runtime."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.stats = {"builds": 0, "loads": 0, "timing_blobs": [], "flags": []}
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    trt.BuilderFlag = types.SimpleNamespace(TF32=7)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = np.dtype

    class ILogger:
        Severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3)

        def __init__(self):
            pass

    trt.ILogger = ILogger

    class Network:
        def __init__(self, flags):
            self.flags, self.io = flags, []

        num_inputs = property(lambda self: 1)
        num_outputs = property(lambda self: 1)

        def get_input(self, i):
            return types.SimpleNamespace(name=self.io[0][0])

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse_from_file(self, path):
            graph = onnx.load(path).graph
            if any(n.op_type == "Unsupported" for n in graph.node):
                self.errors.append("no importer for op Unsupported")
                return False
            dtype = {1: "float32", 10: "float16"}
            self.network.io = [
                (v.name, dtype[v.type.tensor_type.elem_type]) for v in (*graph.input, *graph.output)
            ]
            self.network.path = path
            return True

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return self.errors[i]

    class TimingCache:
        def __init__(self, blob):
            self.blob = bytes(blob)

        def serialize(self):
            return self.blob + b"+"

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.timing = set(), [], None

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)
            trt.stats["flags"].append(("clear", flag))

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

        def create_timing_cache(self, blob):
            trt.stats["timing_blobs"].append(bytes(blob))
            return TimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing = cache
            return True

        def get_timing_cache(self):
            return self.timing

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            profile = types.SimpleNamespace(shapes={})
            profile.set_shape = lambda name, lo, opt, hi: profile.shapes.update(
                {name: (lo, opt, hi)}
            )
            return profile

        def build_serialized_network(self, network, config):
            ((_, (lo, opt, hi)),) = config.profiles[0].shapes.items()
            assert lo == opt == hi  # one exact shape per engine
            assert network.flags == 1 << 1  # strongly typed
            trt.stats["builds"] += 1
            plan = {"path": network.path, "io": network.io, "shape": list(opt)}
            return b"FAKEPLAN" + json.dumps(plan).encode()

    class Context:
        def __init__(self, engine):
            self.engine, self.addresses, self.shape = engine, {}, None

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return self.shape == tuple(self.engine.plan["shape"])

        def get_tensor_shape(self, name):
            return self.shape

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream):
            assert stream == 77
            (i_name, i_type), (o_name, o_type) = self.engine.plan["io"]
            size = int(np.prod(self.shape))
            x = np.frombuffer(
                (ctypes.c_byte * (size * np.dtype(i_type).itemsize)).from_address(
                    self.addresses[i_name]
                ),
                i_type,
            ).reshape(self.shape)
            (y,) = self.engine.session.run(None, {i_name: x})
            y = np.ascontiguousarray(y, o_type)  # keep it alive across the copy
            ctypes.memmove(self.addresses[o_name], y.ctypes.data, y.nbytes)
            return True

    class Engine:
        def __init__(self, plan):
            self.plan = plan
            self.session = ort.InferenceSession(plan["path"], providers=["CPUExecutionProvider"])

        num_io_tensors = 2

        def get_tensor_name(self, i):
            return self.plan["io"][i][0]

        def get_tensor_mode(self, name):
            return "in" if name == self.plan["io"][0][0] else "out"

        def get_tensor_dtype(self, name):
            return dict(self.plan["io"])[name]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            blob = bytes(blob)
            if not blob.startswith(b"FAKEPLAN"):
                return None
            trt.stats["loads"] += 1
            return Engine(json.loads(blob[len(b"FAKEPLAN") :]))

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def mirror_onnx(tmp_path):
    """A tiny fp32 model ``output = -input`` in [-1, 1]: uint8 frames come back as 255 - f."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    minus_one = numpy_helper.from_array(np.array(-1.0, np.float32), "minus_one")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "minus_one"], ["output"])],
        "mirror",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [minus_one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "mirror.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture
def fakes(monkeypatch):
    """Install the fakes as ``tensorrt`` and ``cuda.bindings.runtime``."""
    trt, cudart = _fake_tensorrt(), FakeCudart()
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return trt, cudart


def test_fake_fp16_backend_builds_caches_and_runs(fakes, mirror_onnx, tmp_path):
    trt, cuda = fakes
    cache = tmp_path / "cache"
    frames = np.random.default_rng(0).integers(0, 256, (2, 30, 45, 3), np.uint8)
    with TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, precision="fp16", cache_dir=cache) as backend:
        assert isinstance(backend, Backend)
        assert (backend.name, backend.device, backend.precision) == ("tensorrt", "cuda:0", "fp16")
        assert backend.gpu_name == "Fake RTX 9000" and backend.compute_capability == "8.9"
        # The strongly-typed network parses a cached fp16 copy, fed and read as float16.
        assert backend.onnx_path.parent == cache / "onnx"
        np.testing.assert_array_equal(backend.infer(frames), 255 - frames)
        assert trt.stats["builds"] == 1 and cuda.allocations == 4  # pinned in/out, device in/out
        engine = cache / backend.engine_facts((2, 32, 48)).file_name("mirror")
        assert engine.is_file() and sidecar_path(engine).is_file()
        assert backend._slot.host_in.dtype == np.float16

        # Same shape again: no build, no allocation, H2D + D2H copies only.
        np.testing.assert_array_equal(backend.infer(frames[::-1].copy()), 255 - frames[::-1])
        assert trt.stats["builds"] == 1 and cuda.allocations == 4
        assert cuda.copies == [1, 2, 1, 2]

        # A new frame size gets its own engine; the old buffers are freed, not leaked.
        small = frames[:1, :20, :20]
        np.testing.assert_array_equal(backend.infer(np.ascontiguousarray(small)), 255 - small)
        assert trt.stats["builds"] == 2 and len(cuda.live) == 4
    assert cuda.live == {}  # close() freed everything
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(frames)

    # A second backend loads both engines from the cache instead of building.
    loads = trt.stats["loads"]
    with TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, precision="fp16", cache_dir=cache) as again:
        np.testing.assert_array_equal(again.infer(frames), 255 - frames)
        np.testing.assert_array_equal(again.infer(np.ascontiguousarray(small)), 255 - small)
    assert trt.stats["builds"] == 2 and trt.stats["loads"] == loads + 2
    # The timing cache persisted by the first build was handed to the next one.
    assert trt.stats["timing_blobs"][0] == b"" and trt.stats["timing_blobs"][1] == b"+"


def test_fake_backend_rebuilds_stale_or_undeserialisable_engines(fakes, mirror_onnx, tmp_path):
    trt, _ = fakes
    frames = np.zeros((1, 16, 16, 3), np.uint8)
    with TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, precision="fp32", cache_dir=tmp_path) as b:
        b.infer(frames)
        facts = b.engine_facts((1, 16, 16))
        assert b._slot.host_in.dtype == np.float32 and b.onnx_path == mirror_onnx
        assert ("clear", trt.BuilderFlag.TF32) in trt.stats["flags"]  # fp32 means fp32
    path = tmp_path / facts.file_name("mirror")
    assert trt.stats["builds"] == 1

    # A sidecar written for another GPU: rebuilt, and the sidecar now matches this one.
    foreign = dataclasses.replace(facts, gpu_name="Some Other GPU")
    write_cached_engine(path, path.read_bytes(), foreign)
    with TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, precision="fp32", cache_dir=tmp_path) as b:
        b.infer(frames)
    assert trt.stats["builds"] == 2 and sidecar_matches(path, facts)

    # A matching sidecar over an engine TensorRT refuses to deserialise: rebuilt.
    write_cached_engine(path, b"garbage from an older TensorRT", facts)
    with TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, precision="fp32", cache_dir=tmp_path) as b:
        np.testing.assert_array_equal(b.infer(frames), 255 - frames)
    assert trt.stats["builds"] == 3 and read_cached_engine(path, facts).startswith(b"FAKEPLAN")


def test_fake_backend_reports_missing_pieces(fakes, mirror_onnx, monkeypatch, tmp_path):
    trt, cuda = fakes
    cuda.gpus = 0
    with pytest.raises(BackendUnavailableError, match=r"GPU and driver.*InsufficientDriver"):
        TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, cache_dir=tmp_path)
    cuda.gpus = 1
    with pytest.raises(BackendUnavailableError, match="cuda:3"):
        TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, device="cuda:3", cache_dir=tmp_path)

    trt.__version__ = "8.6.1"
    with pytest.raises(BackendUnavailableError, match="too old"):
        TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, cache_dir=tmp_path)
    trt.__version__ = "10.13.0.35"

    onnx = pytest.importorskip("onnx")
    model = onnx.load(mirror_onnx)
    model.graph.node[0].op_type = "Unsupported"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, bad)
    with pytest.raises(BackendUnavailableError, match=r"cannot parse bad\.onnx: no importer"):
        TensorRTBackend(bad, (-1.0, 1.0), 8, precision="fp32", cache_dir=tmp_path)

    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    monkeypatch.setitem(sys.modules, "cuda", None)
    with pytest.raises(BackendUnavailableError, match="pip install cuda-python"):
        TensorRTBackend(mirror_onnx, (-1.0, 1.0), 8, cache_dir=tmp_path)


# -- fp16 ONNX conversion ----------------------------------------------------------------------


def test_fp16_conversion_keeps_float32_where_operators_need_it(tmp_path):
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from engine.backends.fp16_onnx import convert_to_fp16

    rng = np.random.default_rng(0)
    consts = {
        "w": rng.normal(0, 0.3, (4, 3, 3, 3)),
        "b": np.zeros(4),
        "bn_scale": np.full(4, 1.5),
        "bn_bias": np.full(4, 0.1),
        "bn_mean": np.full(4, 0.2),
        "bn_var": np.full(4, 2.0),
        "scales": np.array([1, 1, 2, 2]),
        "hundred": np.array(100.0),
        "huge": np.array(1e6),  # beyond float16: must saturate, not become inf
    }
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()]
    inits.append(numpy_helper.from_array(np.array(2, np.int64), "axis_h"))
    minus_one = numpy_helper.from_array(np.array(-1.0, np.float32))
    nodes = [
        # Shape arithmetic in float32 that meets the pixel data in a Mul.
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "axis_h"], ["h"]),
        helper.make_node("Cast", ["h"], ["h_float"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["h_float", "hundred"], ["gain"]),
        helper.make_node("Mul", ["input", "gain"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["conv", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"]
        ),
        helper.make_node("Constant", [], ["lo"], value=minus_one),
        helper.make_node("Clip", ["bn", "lo", "huge"], ["clipped"]),
        helper.make_node("Resize", ["clipped", "", "scales"], ["output"], mode="nearest"),
    ]
    graph = helper.make_graph(
        nodes,
        "synthetic",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 4, "h2", "w2"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    src = tmp_path / "synthetic.onnx"
    onnx.save(model, src)

    dst = convert_to_fp16(src, tmp_path / "out" / "synthetic.fp16.onnx")
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temp file left
    converted = onnx.load(dst)
    g = converted.graph
    assert g.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert g.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    fp32 = {t.name for t in g.initializer if t.data_type == TensorProto.FLOAT}
    assert fp32 == {"scales", "hundred"}  # Resize scales and shape arithmetic only
    by_output = {n.output[0]: n for n in g.node}
    assert by_output["h_float"].attribute[0].i == TensorProto.FLOAT  # shape arithmetic stays fp32
    (meet,) = [n for n in g.node if n.op_type == "Cast" and n.input[0] == "gain"]
    assert (
        meet.attribute[0].i == TensorProto.FLOAT16 and meet.output[0] in by_output["scaled"].input
    )
    assert by_output["output"].input[2] == "scales"
    huge = next(t for t in g.initializer if t.name.startswith("huge"))
    assert numpy_helper.to_array(huge) == np.float16(65504)

    x = rng.random((1, 3, 20, 30), dtype=np.float32)
    want = ort.InferenceSession(src).run(None, {"input": x})[0]
    got = ort.InferenceSession(dst).run(None, {"input": x.astype(np.float16)})[0]
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), want, atol=2e-3)


def test_fp16_conversion_without_onnx_names_the_package(monkeypatch, tmp_path):
    from engine.backends.fp16_onnx import convert_to_fp16

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(BackendUnavailableError, match="pip install onnx"):
        convert_to_fp16(tmp_path / "a.onnx", tmp_path / "b.onnx")


def _photo(height: int = 256, width: int = 384) -> np.ndarray:
    """A real photo, resized to cover ``height`` × ``width`` and centre-cropped to it."""
    cv2 = pytest.importorskip("cv2")
    photos = sorted(PHOTOS.glob("*.jpg"))
    if not photos:
        pytest.skip(f"no photos in {PHOTOS}")
    bgr = cv2.imread(str(photos[0]))
    scale = max(height / bgr.shape[0], width / bgr.shape[1])
    size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    top, left = (bgr.shape[0] - height) // 2, (bgr.shape[1] - width) // 2
    return np.ascontiguousarray(
        cv2.cvtColor(bgr[top : top + height, left : left + width], cv2.COLOR_BGR2RGB)
    )


@pytest.mark.parametrize("name", ["fpn_mobilenet_dsc", "mimo_unet"])
def test_fp16_model_stays_within_2_of_255_on_a_real_photo(name, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from engine.backends.fp16_onnx import convert_to_fp16, fp16_max_error
    from engine.models import create_model, get_spec
    from training.export import export_onnx

    image = _photo()
    spec = get_spec(name)
    torch.manual_seed(0)  # the zoo's own initialisation, BatchNorm in its initial eval state
    model = create_model(name).eval()
    fp32 = export_onnx(model, tmp_path / f"{name}.onnx")
    fp16 = convert_to_fp16(fp32, tmp_path / f"{name}.fp16.onnx")

    # The bound means something only if the network really changes the picture.
    lo, hi = spec.input_range
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() * ((hi - lo) / 255) + lo
    with torch.no_grad():
        change = float((model(x) - x).abs().max()) * 255 / (hi - lo)
    assert change > 8

    error = fp16_max_error(fp32, fp16, image, spec.input_range, spec.multiple)
    print(f"{name}: fp16 max error {error:g}/255 (network changes pixels by up to {change:.1f})")
    assert error <= 2
