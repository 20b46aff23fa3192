import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from training.config import load_config
from training.ema import ModelEMA
from training.run_log import ProgressBar, plot_run, read_log
from training.sampler import EpochIndexedDataset, InfiniteSampler
from training.schedules import build_schedule
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
    # Two OpenMP threads on two cores shared with other processes stall at every barrier
    # (steps 20-50x slower); one thread keeps these tests fast and steady.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _losses(run_dir):
    return [r["loss"] for r in read_log(Path(run_dir) / "log.jsonl") if r["kind"] == "train"]


# --- schedules ------------------------------------------------------------------------------


def test_cosine_schedule_goes_from_one_to_min_factor():
    s = build_schedule({"type": "cosine", "min_factor": 0.1}, 100)
    assert s.factor(0) == pytest.approx(1.0)
    assert s.factor(50) == pytest.approx(0.55)
    assert s.factor(100) == pytest.approx(0.1)
    assert all(s.factor(t) >= s.factor(t + 1) for t in range(100))


def test_linear_decay_is_constant_then_linear_to_zero():
    s = build_schedule({"type": "linear_decay", "start": 0.5}, 1000)
    assert s.factor(0) == s.factor(499) == 1.0
    assert s.factor(750) == pytest.approx(0.5)
    assert s.factor(1000) == pytest.approx(0.0)


def test_step_schedule_halves_every_n_steps_and_accepts_fractions():
    s = build_schedule({"type": "step", "every": 10, "gamma": 0.5}, 100)
    assert [s.factor(t) for t in (0, 9, 10, 19, 20, 35)] == [1, 1, 0.5, 0.5, 0.25, 0.125]
    assert build_schedule({"type": "step", "every": 0.25}, 100).every == 25


def test_polynomial_schedule_has_the_srn_shape():
    s = build_schedule({"type": "polynomial", "power": 0.3, "end_factor": 0.01}, 200)
    for t in (0, 50, 100, 199):
        assert s.factor(t) == pytest.approx(0.99 * (1 - t / 200) ** 0.3 + 0.01)


def test_warmup_ramps_linearly():
    s = build_schedule({"type": "constant", "warmup": 4}, 100)
    assert [s.factor(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_schedule_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown schedule 'cosinus'"):
        build_schedule({"type": "cosinus"}, 10)
    with pytest.raises(ValueError, match="unknown options \\['gama'\\]"):
        build_schedule({"type": "step", "every": 2, "gama": 0.5}, 10)
    with pytest.raises(ValueError, match="needs 'every'"):
        build_schedule({"type": "step"}, 10)


# --- sampler, EMA, checkpoint ---------------------------------------------------------------


def test_sampler_shards_one_global_order_between_ranks():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    single = take(InfiniteSampler(7, seed=3), 28)
    rank0 = take(InfiniteSampler(7, seed=3, rank=0, world_size=2), 14)
    rank1 = take(InfiniteSampler(7, seed=3, rank=1, world_size=2), 14)
    assert rank0 == single[0::2] and rank1 == single[1::2]
    for epoch in range(4):  # every pass is a permutation; passes differ
        assert sorted(i for e, i in single if e == epoch) == list(range(7))
    assert [i for e, i in single if e == 0] != [i for e, i in single if e == 1]
    # Resuming from a global position continues the same sequence.
    assert take(InfiniteSampler(7, seed=3, start=10), 18) == single[10:]
    assert take(InfiniteSampler(7, seed=3, rank=1, world_size=2, start=10), 9) == single[11::2]


def test_sampler_refuses_to_resume_on_other_data():
    state = InfiniteSampler(7, seed=3).state_dict(position=12)
    assert InfiniteSampler.position_from(state, 7, 3) == 12
    with pytest.raises(ValueError, match="would not continue the same data order"):
        InfiniteSampler.position_from(state, 8, 3)


@needs_photos
def test_dataloader_workers_make_the_same_items_as_the_main_process():
    from training.data import SyntheticBlurDataset

    ds = EpochIndexedDataset(SyntheticBlurDataset(PHOTOS / "train", crop=32, seed=5, length=3))

    def batches(workers):
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=2,
            sampler=InfiniteSampler(len(ds), seed=5),
            num_workers=workers,
            generator=torch.Generator().manual_seed(0),
        )
        it = iter(loader)
        return [next(it) for _ in range(3)]  # crosses into the second pass

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a["blur"], b["blur"]) and torch.equal(a["sharp"], b["sharp"])


def test_ema_averages_floats_and_copies_integer_buffers():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.75, warmup=False)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(4, 2))  # bumps num_batches_tracked and the running stats
    ema.update(model)
    now, src = ema.module.state_dict(), model.state_dict()
    for key, value in now.items():
        if value.dtype.is_floating_point:
            assert torch.allclose(value, 0.75 * before[key] + 0.25 * src[key])
        else:
            assert torch.equal(value, src[key])
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    path = save_checkpoint({"rng": [capture_rng_state()]}, tmp_path / "c.pt")
    expected = (random.random(), np.random.standard_normal(3), torch.rand(3))
    restore_rng_state(load_checkpoint(path)["rng"][0])
    got = (random.random(), np.random.standard_normal(3), torch.rand(3))
    assert got[0] == expected[0]
    assert np.array_equal(got[1], expected[1]) and torch.equal(got[2], expected[2])


def test_foreign_files_are_not_checkpoints(tmp_path):
    plain = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(CheckpointError, match="not an rtdeblur training checkpoint"):
        load_checkpoint(plain)
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_progress_bar_shows_rate_eta_and_losses():
    out = io.StringIO()
    bar = ProgressBar(10, stream=out)
    bar.update(5, {"loss": 0.125, "l1": 0.1}, force=True)
    line = out.getvalue()
    assert "step 5/10" in line and "it/s" in line and "ETA" in line
    assert "loss 0.125" in line and "l1 0.1" in line


def test_plot_is_written_from_a_log(tmp_path):
    records = [
        {"kind": "train", "step": s, "loss": 1.0 / s, "l1": 0.5 / s, "lr": 1e-4} for s in (1, 2)
    ]
    records.append({"kind": "val", "step": 2, "psnr": 25.0, "psnr_input": 22.0, "ssim": 0.8})
    path = plot_run(records, tmp_path / "plot.png", "run")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- training -------------------------------------------------------------------------------


def _smoke_config(recipe, out, *overrides):
    return load_config(CONFIGS / f"{recipe}.yaml", "smoke", [f"out_dir={out}", *overrides])


@needs_photos
def test_small_model_overfits_four_pairs(tmp_path):
    """FPN-MobileNet-DSC on 4 fixed 64×64 pairs: MSE falls ≥ 10× and far below the input's."""
    from training.data import PairedFolderDataset, write_validation_set

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((PHOTOS / "train").glob("*.jpg"))[:2]:
        shutil.copy(p, photos)
    pairs = write_validation_set(photos, tmp_path / "pairs", seed=3, crop=64, per_image=2)
    config = _smoke_config(
        "fpn_mobilenet_dsc",
        tmp_path / "run",
        "model.kwargs.backbone_weights=null",
        "loss={mse: 1.0}",
        "adversarial=null",
        "optimizer.lr=3e-3",
        "schedule={type: constant}",
        f"data.train={{type: paired, root: {pairs}, crop: null}}",
        "data.val=null",
        "data.batch_size=4",
        "train.steps=80",
        "train.freeze_backbone=0",
        "train.checkpoint_every=1000",
    )
    trainer = Trainer(config, progress=False)
    trainer.fit()
    trainer.close()
    losses = _losses(tmp_path / "run")
    assert len(losses) == 80
    final = float(np.mean(losses[-5:]))
    ds = PairedFolderDataset(pairs, crop=None)
    # MSE of the blurred input itself, in the model's [-1, 1] range (4× the [0, 1] value).
    identity = float(
        np.mean([4 * ((ds[i]["blur"] - ds[i]["sharp"]) ** 2).mean() for i in range(4)])
    )
    print(f"overfit: first {losses[0]:.5f}, last-5 mean {final:.5f}, input {identity:.5f}")
    assert losses[0] / final >= 10
    assert final < identity / 3  # it learned the pairs, not just to undo its initial weights


@needs_photos
@pytest.mark.parametrize("recipe", ["lprn", "fpn_mobilenet_dsc"])
def test_resume_continues_exactly(tmp_path, recipe):
    """Stop after 2 of 4 steps, resume: steps 3-4 match an uninterrupted run bit for bit.

    fpn_mobilenet_dsc brings the discriminator, RaGAN-LS history pools, the perceptual loss,
    BatchNorm statistics and the backbone freeze; lprn the EMA and multi-output losses.
    """
    extra = ["data.val=null", "train.steps=4", "train.checkpoint_every=100"]
    if recipe == "fpn_mobilenet_dsc":
        extra.append("train.freeze_backbone=3")  # the resumed steps cross the unfreezing
    full = Trainer(_smoke_config(recipe, tmp_path / "full", *extra), progress=False)
    full.fit()
    full.close()
    part = Trainer(_smoke_config(recipe, tmp_path / "part", *extra), progress=False)
    part.fit(until=2)
    part.close()
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 2
    resumed = Trainer(_smoke_config(recipe, tmp_path / "part", *extra), resume=True, progress=False)
    resumed.fit()
    resumed.close()
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    print(f"{recipe}: uninterrupted {a}, resumed {b}")
    assert len(a) == len(b) == 4
    assert a == b  # exact: the step after the resume, and the one after it
    ca = load_checkpoint(tmp_path / "full" / "last.pt")
    cb = load_checkpoint(tmp_path / "part" / "last.pt")
    for key, value in ca["model"].items():
        assert torch.equal(value, cb["model"][key]), key
    assert ca["sampler"] == cb["sampler"]
    for run in ("full", "part"):  # ~180 MB each with the discriminator: not left in /tmp
        (tmp_path / run / "last.pt").unlink()


@needs_photos
def test_backbone_is_frozen_for_the_warm_up_only(tmp_path):
    config = _smoke_config(
        "fpn_mobilenet_dsc",
        tmp_path / "run",
        "data.val=null",
        "adversarial=null",
        "loss={mse: 1.0}",
        "train.freeze_backbone=2",
        "train.steps=10",
    )
    trainer = Trainer(config, progress=False)
    net = trainer.model_module
    backbone = {n: p.detach().clone() for n, p in net.backbone.named_parameters()}
    decoder = [p.detach().clone() for p in net.smooth.parameters()]
    for _ in range(2):
        trainer.train_step(trainer._next_batch())
    assert all(torch.equal(p, backbone[n]) for n, p in net.backbone.named_parameters())
    assert all(not torch.equal(p, q) for p, q in zip(net.smooth.parameters(), decoder, strict=True))
    trainer.train_step(trainer._next_batch())
    assert any(not torch.equal(p, backbone[n]) for n, p in net.backbone.named_parameters())
    trainer.close()


@needs_photos
def test_two_process_ddp_step_runs_on_gloo(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.cli_train", os.fspath(CONFIGS / "lprn.yaml"), "--variant", "smoke",
        "--out", os.fspath(out), "--set", "train.steps=2", "--set", "data.val.limit=1", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_log(out / "log.jsonl")
    assert records[0]["kind"] == "start" and records[0]["world_size"] == 2
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in records if r["kind"] == "train")
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    # Two ranks × batch 2 × 2 steps of one shared data order.
    assert ckpt["sampler"]["position"] == 8
    assert any(r["kind"] == "val" for r in records)  # rank 0 validated


def test_null_in_a_schedule_leaves_the_option_at_its_default():
    from training.schedules import LRSchedule

    a = LRSchedule("cosine", 100, start=None, end_factor=None)
    b = LRSchedule("cosine", 100)
    assert [a.factor(i) for i in (0, 50, 99)] == [b.factor(i) for i in (0, 50, 99)]
    with pytest.raises(ValueError, match="unknown options"):
        LRSchedule("cosine", 100, start=0.5)


def test_checkpoints_record_training_time_and_hardware(tmp_path):
    from training.checkpoint import load_checkpoint
    from training.trainer import Trainer

    config = _smoke_config("lprn", tmp_path / "run")
    trainer = Trainer(config, progress=False)
    try:
        trainer.fit()
    finally:
        trainer.close()
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["train_seconds"] > 0
    assert ckpt["hardware"] and "cores" in ckpt["hardware"][0]


def test_init_from_a_shipped_model_keeps_its_cards_training_record(tmp_path):
    """model.init on a .pth that a model card beside it ships: the card's training stands in
    for the runs behind the weights, so a new card counts their steps and time too."""
    from engine.models import create_model
    from training.config import ConfigError

    models = tmp_path / "models"
    models.mkdir()
    state = create_model("lprn").state_dict()
    torch.save(state, models / "mine.pth")
    older = {"steps": 30, "train_seconds": 20.0, "recipe": "lprn", "variant": "cpu", "init": None}
    training = {"recipe": "lprn", "variant": "cpu_pool", "weights": "ema", "steps": 100,
                "run_steps": 70, "train_seconds": 50.0, "hardware": ["cpu x"],
                "initialised_from": older}  # fmt: skip
    card = {"name": "mine", "architecture": "lprn", "version": "1", "input_range": [-1, 1],
            "multiple": 4, "onnx": "mine.onnx", "sha256": "0", "weights": "mine.pth",
            "training": training}  # fmt: skip
    (models / "mine.json").write_text(json.dumps(card))
    init = f"model.init={models / 'mine.pth'}"
    trainer = Trainer(_smoke_config("lprn", tmp_path / "run", "data.val=null", init),
                      progress=False)  # fmt: skip
    try:
        info = trainer.init_info
        got = trainer.model_module.state_dict()
        assert all(torch.equal(got[k], v) for k, v in state.items())
    finally:
        trainer.close()
    assert info["card"] == str((models / "mine.json").resolve())
    assert (info["steps"], info["train_seconds"]) == (70, 30.0)  # the card's own run
    assert info["init"] == older and info["recipe"] == "lprn" and info["weights"] == "ema"
    assert info["variant"] == "cpu_pool" and info["hardware"] == ["cpu x"]

    (models / "mine.json").write_text(json.dumps({**card, "architecture": "srn"}))
    with pytest.raises(ConfigError, match=r"holds 'srn' .*the config builds 'lprn'"):
        Trainer(_smoke_config("lprn", tmp_path / "b", "data.val=null", init), progress=False)
    (models / "mine.json").write_text(json.dumps({**card, "weights": "other.pth"}))
    trainer = Trainer(_smoke_config("lprn", tmp_path / "c", "data.val=null", init),
                      progress=False)  # fmt: skip
    trainer.close()
    assert "card" not in trainer.init_info and "steps" not in trainer.init_info


@needs_photos
def test_pool_training_and_init_from_an_earlier_run(tmp_path):
    """A run on a pre-synthesised pool, then a second run that starts from its weights."""
    from training.config import ConfigError

    pool = ["data.train.pool={count: 5, crop: 72, workers: 1}", "data.train.crop=64"]
    common = ["data.val=null", "adversarial=null", "loss={mse: 1.0}", "train.freeze_backbone=0"]
    first = Trainer(_smoke_config("fpn_mobilenet_dsc", tmp_path / "a", *common, *pool),
                    progress=False)  # fmt: skip
    folder = Path(first.config["data"]["train"]["pool"]["dir"])
    assert folder.parent == tmp_path / "pools" and len(list((folder / "blur").glob("*"))) == 5
    assert len(first.dataset) == 5 and first.dataset[0]["blur"].shape == (3, 64, 64)
    first.fit()
    first.close()
    assert f"dir: {folder}" in (tmp_path / "a" / "config.yaml").read_text()
    stamp = (folder / "meta.json").stat().st_mtime_ns

    init = f"model.init={tmp_path / 'a' / 'last.pt'}"
    second = Trainer(
        _smoke_config("fpn_mobilenet_dsc", tmp_path / "b", *common, *pool, init), progress=False
    )
    assert (folder / "meta.json").stat().st_mtime_ns == stamp  # the same pool, reused
    trained = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    state = second.model_module.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trained.items())
    assert second.step == 0  # weights only: a new run
    second.fit()
    second.close()
    info = load_checkpoint(tmp_path / "b" / "last.pt")["init"]
    assert info["steps"] == 3 and info["weights"] == "raw" and info["train_seconds"] > 0

    torch.save(trained, tmp_path / "plain.pth")  # a plain state dict works too
    plain = f"model.init={tmp_path / 'plain.pth'}"
    third = Trainer(_smoke_config("fpn_mobilenet_dsc", tmp_path / "c", *common, plain),
                    progress=False)  # fmt: skip
    assert torch.equal(third.model_module.state_dict()["smooth.0.0.weight"],
                       trained["smooth.0.0.weight"])  # fmt: skip
    third.close()

    other = f"model.init={tmp_path / 'a' / 'last.pt'}"
    with pytest.raises(ConfigError, match="trained 'fpn_mobilenet_dsc', the config builds 'lprn'"):
        Trainer(_smoke_config("lprn", tmp_path / "d", "data.val=null", other), progress=False)
    with pytest.raises(ConfigError, match=r"model\.init: checkpoint not found"):
        _smoke_config("lprn", tmp_path / "e", "model.init=nowhere.pt")
    with pytest.raises(ConfigError, match=r"no larger than data\.train\.pool\.crop"):
        _smoke_config("lprn", tmp_path / "e", "data.train.pool={count: 5, crop: 16}")
    with pytest.raises(ConfigError, match="unknown key"):
        _smoke_config("lprn", tmp_path / "e", "data.train.pool={count: 5, crop: 99, size: 1}")


@needs_photos
def test_channels_last_training_matches_the_default_layout(tmp_path):
    losses = {}
    for layout in (False, True):
        config = _smoke_config(
            "fpn_mobilenet_dsc", tmp_path / f"cl{layout}", "data.val=null", "adversarial=null",
            "loss={mse: 1.0}", f"train.channels_last={str(layout).lower()}",
        )  # fmt: skip
        trainer = Trainer(config, progress=False)
        trainer.fit()
        trainer.close()
        losses[layout] = _losses(tmp_path / f"cl{layout}")
    assert len(losses[True]) == 3
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
