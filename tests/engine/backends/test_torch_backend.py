import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.backends.base import BackendUnavailableError  # noqa: E402
from engine.backends.torch_backend import TorchBackend  # noqa: E402
from engine.models import create_model, get_spec  # noqa: E402


def _frames(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _reference(model, name, frames):
    lo, hi = get_spec(name).input_range
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 * (hi - lo) + lo
    with torch.no_grad():
        y = model.eval()(x)
    y = ((y - lo) / (hi - lo) * 255).clamp(0, 255).round().byte()
    return y.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("name", ["fpn_mobilenet_dsc", "mimo_unet"])
def test_matches_the_model_on_odd_sizes(name):
    torch.manual_seed(0)
    backend = TorchBackend.from_architecture(name)
    frames = _frames(2, 97, 131)
    out = backend.infer(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - _reference(backend.model, name, frames))
    assert diff.max() <= 1


def test_reuses_buffers_for_the_same_shape():
    backend = TorchBackend.from_architecture("fpn_mobilenet_dsc")
    a = backend.infer(_frames(1, 64, 96, 1))
    b = backend.infer(_frames(1, 64, 96, 2))
    assert np.shares_memory(a, b)
    c = backend.infer(_frames(1, 40, 40))
    assert c.shape == (1, 40, 40, 3)


def test_refuses_what_it_cannot_do_here():
    model = create_model("fpn_mobilenet_dsc")
    with pytest.raises(BackendUnavailableError, match="fp16/bf16 on CUDA only"):
        TorchBackend(model, (-1, 1), 32, precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="no GPU"):
            TorchBackend(model, (-1, 1), 32, device="cuda")
    with pytest.raises(ValueError, match="uint8"):
        TorchBackend(model, (-1, 1), 32).infer(np.zeros((1, 8, 8, 3), np.float32))


def test_loads_weights_from_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = create_model("lprn", stages=1)
    torch.save({"model": model.state_dict(), "step": 5}, tmp_path / "ckpt.pth")
    backend = TorchBackend.from_architecture("lprn", tmp_path / "ckpt.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(backend.model.state_dict()[key], value)


def test_reference_path_runs_the_upstream_way():
    from engine.models.reference import UpstreamReference

    ref = UpstreamReference()
    assert ref.model.training  # upstream runs inference in train mode
    frame = _frames(1, 64, 64)[0]
    out = ref(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
