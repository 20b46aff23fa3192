import itertools
from pathlib import Path

import numpy as np
import pytest

from engine.pipeline.convert import FrameConverter, padded_size
from engine.pipeline.runner import FramePipeline, is_out_of_memory
from engine.pipeline.tiling import TiledRunner, feather_ramp, tile_starts

SHARED = Path(__file__).parents[3].parent / "shared" / "data"


def _frames(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(("h", "w"), [(97, 131), (360, 640), (64, 64), (33, 17)])
def test_converter_round_trip_and_reflection(h, w, dtype):
    conv = FrameConverter((-1.0, 1.0), 32, dtype=dtype)
    frames = _frames(2, h, w)
    x = conv.to_input(frames)
    hp, wp = padded_size(h, w, 32)
    assert x.shape == (2, 3, hp, wp) and x.dtype == dtype
    assert x.min() == -1.0 and x.max() == 1.0  # the extreme levels map to the range's ends
    expected = np.pad(frames, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="reflect")
    atol = 1e-6 if dtype == np.float32 else 5e-4
    np.testing.assert_allclose(x, expected.transpose(0, 3, 1, 2) / 127.5 - 1.0, atol=atol)
    assert np.array_equal(conv.to_frames(x.copy()), frames)


@pytest.mark.parametrize(
    ("dtype", "high"),
    # float16 holds the tie levels exactly only on a 0…255 scale.
    [(np.float32, 1.0), (np.float16, 255.0)],
)
def test_converter_clamps_and_rounds_half_to_even(dtype, high):
    conv = FrameConverter((0.0, high), 8, dtype=dtype)
    frames = _frames(1, 8, 8)
    assert conv.to_input(frames).dtype == dtype
    level = high / 255
    out = np.full((1, 3, 8, 8), 127.5 * level, dtype)
    out[0, 0, 0, 0] = 7.0 * high  # above range: clamped to 255
    out[0, 1, 0, 0] = -3.0 * high  # below: clamped to 0
    y = conv.to_frames(out)
    assert y[0, 0, 0, 0] == 255 and y[0, 0, 0, 1] == 0
    assert y[0, 1, 1, 2] == 128  # 127.5 rounds half to even
    out[0, 2, 3, 4] = 128.5 * level  # rounds half to even: down to 128
    out[0, 2, 3, 5] = 129.5 * level  # up to 130
    y = conv.to_frames(out)
    assert (y[0, 3, 4, 2], y[0, 3, 5, 2]) == (128, 130)


def test_converter_reuses_its_buffers_for_the_same_shape():
    conv = FrameConverter((0.0, 1.0), 16)
    a, b = _frames(1, 50, 70, 1), _frames(1, 50, 70, 2)
    x1 = conv.to_input(a)
    y1 = conv.to_frames(x1.copy())
    x2 = conv.to_input(b)
    y2 = conv.to_frames(x2.copy())
    assert x1 is x2 and y1 is y2
    assert np.array_equal(y2, b)
    x3 = conv.to_input(_frames(1, 20, 30))
    assert x3 is not x1 and x3.shape == (1, 3, 32, 32)


def test_converter_writes_into_a_given_buffer():
    conv = FrameConverter((-1.0, 1.0), 32, dtype=np.float16)
    frames = _frames(1, 40, 50)
    own = conv.to_input(frames).copy()
    out = np.zeros((1, 3, 64, 64), np.float16)
    assert conv.to_input(frames, out=out) is out
    assert np.array_equal(out, own)
    with pytest.raises(ValueError, match="shape"):
        conv.to_input(frames, out=np.zeros((1, 3, 40, 50), np.float16))
    with pytest.raises(ValueError, match="float16"):
        conv.to_input(frames, out=np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        conv.to_input(frames, out=np.zeros((1, 3, 64, 128), np.float16)[..., ::2])


def test_tile_layout_covers_with_overlap():
    starts = tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 64 for a, b in itertools.pairwise(starts))
    assert tile_starts(200, 256, 64) == [0]
    with pytest.raises(ValueError):
        tile_starts(1000, 100, 64)
    ramp = feather_ramp(20, 8, 4, at_start=False, at_end=True)
    assert list(ramp[:2]) == [0, 0] and 0 < ramp[2] < ramp[3] < ramp[5] < 1.0
    assert ramp[6] == 1.0 and ramp[-1] == 1.0
    # Two neighbours overlapping by 8: every pixel keeps a positive total weight.
    right_edge = feather_ramp(20, 8, 4, at_start=True, at_end=False)[-8:]
    assert (right_edge + ramp[:8] > 0).all()


def _local_filter(batch):
    # A 5×5 box filter: receptive field 5 px, so any overlap ≥ 2 px is seamless.
    import cv2

    return np.stack([cv2.blur(f, (5, 5), borderType=cv2.BORDER_REFLECT_101) for f in batch])


def test_tiled_equals_whole_frame_when_overlap_covers_the_receptive_field():
    frame = _frames(1, 300, 410, 3)[0]
    whole = _local_filter(frame[None])[0]
    runner = TiledRunner(_local_filter, tile=128, overlap=16, feather=8)
    tiled = runner.run(frame)
    assert runner.tiles_per_frame > 4
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_tiling_a_real_photo_with_a_network_matches_whole_frame():
    torch = pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    photo = SHARED / "photos" / "val" / "gcompris_goat.jpg"
    if not photo.is_file():
        pytest.skip("shared data not present")
    from engine.backends.torch_backend import TorchBackend
    from engine.models import create_model

    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)[:320, :448].copy()
    torch.manual_seed(0)
    # Two stages of 3×3 convs, no global attention: receptive field 2 × 31 = 62 px
    # (radius 31), covered by the 32 px that overlap - feather leaves on each side.
    model = create_model("lprn", stages=2, recalibration="none")
    backend = TorchBackend(model, (0.0, 1.0), 1)
    whole = backend.infer(rgb[None])[0].copy()
    tiled = TiledRunner(backend.infer, tile=256, overlap=96, feather=32).run(rgb)
    assert np.abs(tiled.astype(int) - whole).max() <= 2


class _FakeBackend:
    name, device, precision = "fake", "cpu", "fp32"

    def __init__(self, limit):
        self.limit = limit
        self.calls = []

    def infer(self, frames):
        self.calls.append(frames.shape)
        if frames.shape[1] * frames.shape[2] > self.limit:
            raise RuntimeError("CUDA error: out of memory")
        return 255 - frames

    def warmup(self, shape):
        pass

    def close(self):
        pass


def test_pipeline_falls_back_to_tiles_after_out_of_memory():
    backend = _FakeBackend(limit=200 * 200)
    pipe = FramePipeline(backend, tile=128, overlap=16, feather=8)
    frame = _frames(1, 300, 300)[0]
    out = pipe.process(frame)
    assert np.array_equal(out, 255 - frame)
    assert pipe.uses_tiling(300, 300)
    assert backend.calls[0] == (1, 300, 300, 3)
    assert all(shape[1:3] == (128, 128) for shape in backend.calls[1:])
    small = _frames(2, 64, 64)
    assert np.array_equal(pipe.process_batch(small), 255 - small)


def test_pipeline_tiles_frames_above_the_size_limit():
    backend = _FakeBackend(limit=10**9)
    pipe = FramePipeline(backend, max_pixels=100 * 100, tile=64, overlap=8, feather=4)
    frame = _frames(1, 150, 130)[0]
    assert np.array_equal(pipe.process(frame), 255 - frame)
    assert all(shape[1:3] == (64, 64) for shape in backend.calls)


def test_pipeline_reraises_errors_that_are_not_out_of_memory():
    class Broken(_FakeBackend):
        def infer(self, frames):
            raise RuntimeError("unsupported operator")

    with pytest.raises(RuntimeError, match="unsupported"):
        FramePipeline(Broken(0)).process(_frames(1, 32, 32)[0])
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(ValueError("shape"))
