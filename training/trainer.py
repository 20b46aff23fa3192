"""The iteration-based trainer: one loop for every recipe, on one device or many (DDP).

One iteration::

    blur, sharp  ← next batch (values in [0, 1]) → mapped to the model's input range
    outputs      ← G(blur)                     (every scale/stage when a loss is multi-scale)
    content      ← build_loss(config.loss)(outputs, sharp)
    [adversarial] D step on (sharp, final.detach()), then G's term on the updated D
    G step       ← content + w · adversarial   (AMP, gradient clipping, backbone freeze)
    EMA update; log; validate; checkpoint

Losses see the model's own value range (DeblurGAN-v2 trained in [-1, 1], the others in
[0, 1]), so each recipe's weights mean what they meant in its paper.

Exact resume: the data order is a function of the seed (:mod:`training.sampler`), items a
function of ``(seed, pass, index)``, learning rates a function of the step
(:mod:`training.schedules`), and the checkpoint holds every piece of state a step reads
(weights, EMA, optimisers, GradScaler, history pools, data position, every RNG of every rank).
On the CPU the next step's loss of a resumed run equals the uninterrupted run's exactly; on
CUDA set ``train.deterministic: true`` for the same (cuDNN otherwise picks kernels by timing).

Distributed: run under ``torchrun`` (``torchrun --nproc_per_node N -m training.cli_train
CONFIG``); the process group uses NCCL on CUDA and gloo on the CPU, every rank reads its own
shard of the data order, rank 0 logs, validates and saves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from engine.modelcard import find_cards
from engine.models import create_model, get_spec
from training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    link_checkpoint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from training.config import ConfigError, config_differences, dump_config
from training.ema import ModelEMA
from training.evaluate import Evaluator, TorchRestorer, load_lpips, validation_pairs
from training.losses import final_output
from training.run_log import ProgressBar, RunLog, lineage, plot_run, read_log
from training.sampler import EpochIndexedDataset, InfiniteSampler
from training.schedules import LRSchedule, build_schedule, steps_of

LAST, BEST = "last.pt", "best.pt"
CONFIG_FILE, LOG_FILE, PLOT_FILE = "config.yaml", "log.jsonl", "plot.png"


# --- processes and devices ------------------------------------------------------------------


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 when not distributed).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the torch device this process trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs, validates and saves."""
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistContext:
    """Read ``torchrun``'s environment, start the process group and pick the device.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The context; a single process gets rank 0 of 1 and no process group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = str(device)
    use_cuda = torch.cuda.is_available() if want == "auto" else want.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {want!r} but CUDA is not available here")
    if use_cuda:
        index = local if world > 1 or ":" not in want else int(want.split(":", 1)[1])
        dev = torch.device("cuda", index)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if world > 1 and not use_cuda:
        # Processes on one machine share its cores: without this each takes all of them.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return DistContext(rank, world, local, dev)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(_: int) -> None:
    # Workers make items with NumPy/OpenCV; their own thread pools in every worker would
    # oversubscribe the cores without changing a pixel.
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def build_optimizer(params: Any, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """An optimiser from a recipe's ``optimizer`` section.

    Args:
        params: parameters (or groups).
        config: ``type`` (``adam``, ``adamw``, ``sgd``), ``lr``, ``betas``, ``eps``,
            ``weight_decay``, ``momentum`` (SGD).

    Raises:
        ConfigError: unknown type.
    """
    kind = str(config.get("type", "adam")).lower()
    lr = float(config["lr"])
    wd = float(config.get("weight_decay", 0.0))
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        betas = tuple(float(b) for b in config.get("betas", (0.9, 0.999)))
        return cls(params, lr=lr, betas=betas, eps=float(config.get("eps", 1e-8)), weight_decay=wd)
    if kind == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=float(config.get("momentum", 0.9)), weight_decay=wd
        )
    raise ConfigError(f"optimizer.type must be adam, adamw or sgd, got {kind!r}")


def _synthetic_dataset(section: Mapping[str, Any], seed: int, **overrides: Any) -> Any:
    from training.data import SyntheticBlurDataset

    options = {
        "crop": section.get("crop", 256),
        "weights": section.get("weights"),
        "length": section.get("length"),
        "synthesis": section.get("synthesis"),
        "degradation": section.get("degradation", {}),
        "colour_jitter": section.get("colour_jitter", {}),
        "flips": bool(section.get("flips", True)),
        "rotations": bool(section.get("rotations", True)),
        "cache_photos": bool(section.get("cache_photos", False)),
    }
    options.update(overrides)
    return SyntheticBlurDataset(section["root"], seed=seed, **options)


def prepare_pool(
    section: dict[str, Any],
    seed: int,
    pools_root: str | os.PathLike,
    write: bool = True,
    progress: ProgressBar | None = None,
) -> Path:
    """Write (or find) the pre-synthesised pool a ``data.train.pool`` section asks for.

    The pool's folder is ``pool.dir`` when given, else ``pools_root/<hash of its settings>``
    (so pools of other settings never overwrite each other); the folder chosen is stored back
    in ``section["pool"]["dir"]``, and so in the run's config and model card.

    Args:
        section: the resolved ``data.train`` section (type synthetic, with a ``pool``).
        seed: the run's seed (the pool's seed too).
        pools_root: where pools without a ``dir`` go.
        write: False only finds the folder (other DDP ranks wait for rank 0 to write it).
        progress: where to report synthesis progress.

    Returns:
        The pool's folder.
    """
    from training.data.synthetic import pool_settings, write_training_pool

    pool = section["pool"]
    ds = _synthetic_dataset(
        section, seed, crop=pool["crop"], length=pool["count"], cache_photos=True
    )
    if pool.get("dir"):
        folder = Path(pool["dir"])
    else:
        digest = hashlib.sha1(json.dumps(pool_settings(ds), sort_keys=True).encode()).hexdigest()[
            :12
        ]
        folder = Path(pools_root) / f"pool-{digest}"
    pool["dir"] = os.fspath(folder)
    if write:
        started = time.perf_counter()
        shown = [-math.inf]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if progress is not None and (done == total or now - shown[0] >= 10.0):
                shown[0] = now
                rate = done / max(now - started, 1e-9)
                progress.message(
                    f"synthesising the training pool {folder}: {done}/{total} pairs "
                    f"({rate:.0f}/s, ETA {(total - done) / max(rate, 1e-9):.0f} s)"
                )

        workers = int(pool.get("workers") or os.cpu_count() or 1)
        write_training_pool(ds, folder, workers=workers, progress=report)
    return folder


def build_train_dataset(section: Mapping[str, Any], seed: int) -> Any:
    """The training dataset a recipe's ``data.train`` section describes.

    A synthetic section with a written ``pool`` (see :func:`prepare_pool`) trains on the
    pool's pairs, cropped to ``crop`` at random positions.

    Raises:
        DatasetError: the folder holds no usable images.
    """
    from training.data import PairedFolderDataset

    pool = section.get("pool")
    if section["type"] == "paired" or pool:
        return PairedFolderDataset(
            pool["dir"] if pool else section["root"],
            crop=section.get("crop"),
            seed=seed,
            flips=bool(section.get("flips", True)),
            rotations=bool(section.get("rotations", True)),
        )
    return _synthetic_dataset(section, seed)


def _needs_all_outputs(loss_config: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping) and v.get("multiscale") for v in loss_config.values())


class Trainer:
    """Trains one network from a resolved config (see :mod:`training.config`).

    Args:
        config: the resolved config.
        resume: a checkpoint to continue from, ``True`` for ``<out_dir>/last.pt``, or None
            for a fresh run (which refuses an ``out_dir`` that already holds a run).
        progress: draw the progress bar on stderr (rank 0 only).

    Raises:
        ConfigError: a setting that cannot be used (with the key).
        DatasetError: unusable data folders.
        training.checkpoint.CheckpointError: an unreadable checkpoint.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        resume: str | os.PathLike | bool | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config = dict(config)
        train = config["train"]
        self.ctx = setup_distributed(train["device"])
        self.device = self.ctx.device
        self.out_dir = Path(config["out_dir"])
        self.total_steps = int(train["steps"])
        self.seed = int(config["seed"])
        if train.get("deterministic"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels

        resume_path = self._resume_path(resume)
        # Same initial weights on every rank (DDP also broadcasts rank 0's), then per-rank
        # streams so that dropout differs between ranks.
        _seed_all(self.seed)
        self._build_model()
        self._build_losses()
        self._build_optimisers()
        _seed_all(self.seed + 1000 * self.ctx.rank)

        self.step = 0
        # Wall time spent in run() over every session of this training (resumes add up), and
        # the machines it ran on: both go into the model card.
        self.train_seconds = 0.0
        self.hardware: list[str] = []
        self._run_started = time.perf_counter()
        self.last_lr = 0.0
        self.position = 0  # samples consumed by all ranks together
        self.best: dict[str, Any] = {"psnr": -math.inf, "step": None}
        self.last_metrics: dict[str, Any] | None = None
        train_data = config["data"]["train"]
        if train_data.get("pool"):
            pools_root = self.out_dir.parent / "pools"
            bar = ProgressBar(1, enabled=False, messages=self.ctx.is_main and progress)
            prepare_pool(train_data, self.seed, pools_root, write=self.ctx.is_main, progress=bar)
            self._barrier()
        self.dataset = build_train_dataset(train_data, self.seed)
        checkpoint = load_checkpoint(resume_path) if resume_path else None
        if checkpoint is not None:
            self._load_state(checkpoint)
        self._build_loader()
        self.log = RunLog(self.out_dir / LOG_FILE, enabled=self.ctx.is_main)
        self.progress = ProgressBar(
            self.total_steps,
            self.step,
            enabled=progress and self.ctx.is_main,
            messages=self.ctx.is_main,
        )
        self.evaluator: Evaluator | None = None
        if self.ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            dump_config(config, self.out_dir / CONFIG_FILE)
            # A resumed run repeats the steps after its checkpoint: drop their old records.
            self.log.truncate_after(self.step)
            if checkpoint is not None:
                changed = config_differences(checkpoint["config"], config)
                changed = [k for k in changed if not k.startswith("source")]
                if changed:
                    self.progress.message("resuming with a changed config: " + ", ".join(changed))

    # --- construction -----------------------------------------------------------------------

    def _resume_path(self, resume: str | os.PathLike | bool | None) -> Path | None:
        last = self.out_dir / LAST
        if resume is True:
            if not last.is_file():
                raise ConfigError(f"nothing to resume: {last} does not exist")
            return last
        if resume:
            return Path(resume)
        if last.is_file():
            raise ConfigError(
                f"{self.out_dir} already holds a run ({LAST}); pass --resume to continue it "
                "or --out for a new folder"
            )
        return None

    def _build_model(self) -> None:
        cfg = self.config
        name = cfg["model"]["name"]
        self.spec = get_spec(name)
        self.low, self.high = (float(v) for v in self.spec.input_range)
        loss_cfg = cfg["loss"]
        return_all = self.spec.multi_output and _needs_all_outputs(loss_cfg)
        kwargs = dict(cfg["model"].get("kwargs") or {})
        try:
            model = create_model(name, return_all=return_all, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"model.kwargs: {exc}") from None
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"model {name!r}: {exc}") from None
        self.init_info = self._load_init(model, cfg["model"].get("init"))
        self.memory_format = (
            torch.channels_last if cfg["train"].get("channels_last") else torch.contiguous_format
        )
        model.to(self.device, memory_format=self.memory_format).train()
        self.model_module = model
        freeze = self.config["train"]["freeze_backbone"]
        self.freeze_steps = steps_of(freeze, self.total_steps, "train.freeze_backbone")
        self.frozen_params: list[nn.Parameter] = []
        if self.freeze_steps:
            if not hasattr(model, "backbone_parameters"):
                raise ConfigError(
                    f"train.freeze_backbone: model {name!r} has no backbone to freeze; set it to 0"
                )
            self.frozen_params = list(model.backbone_parameters())
        ema_cfg = self.config["train"].get("ema")
        self.ema = (
            ModelEMA(model, float(ema_cfg.get("decay", 0.999)), bool(ema_cfg.get("warmup", True)))
            if ema_cfg
            else None
        )
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # A multi-output network trained on its final output only leaves the heads of the
            # other outputs without gradients; DDP must then look for them every step.
            unused = self.spec.multi_output and not return_all
            self.model: nn.Module = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=unused
            )
        else:
            self.model = model

        adv = self.config.get("adversarial")
        self.disc_module: nn.Module | None = None
        self.disc: nn.Module | None = None
        if adv:
            from training.discriminators import build_discriminator

            disc = build_discriminator(adv.get("discriminator")).to(self.device).train()
            self.disc_module = disc
            if self.ctx.distributed:
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.disc = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
            else:
                self.disc = disc

    def _load_init(self, model: nn.Module, path: str | None) -> dict[str, Any] | None:
        """Load the weights of ``model.init`` into ``model``; what the card says about them.

        A training checkpoint gives its EMA weights when it kept them (the ones it validated
        and would export), else its raw weights; its steps, time and hardware are kept so that
        the model card can account for the whole training. A plain state dict gives itself,
        and when a model card beside it names it as its weights (a shipped model), the card's
        training record stands for the runs behind it.
        """
        if not path:
            return None
        info: dict[str, Any] = {"checkpoint": os.path.abspath(path)}
        try:
            ckpt: Mapping[str, Any] | None = load_checkpoint(path)
        except CheckpointError:
            ckpt = None  # perhaps a plain state dict: tried below
        if ckpt is not None:
            if ckpt.get("model_name") != self.spec.name:
                raise ConfigError(
                    f"model.init: {path} trained {ckpt.get('model_name')!r}, the config builds "
                    f"{self.spec.name!r}"
                )
            state = ckpt["ema"]["module"] if ckpt.get("ema") else ckpt["model"]
            config = ckpt.get("config") or {}
            info.update(
                weights="ema" if ckpt.get("ema") else "raw",
                steps=int(ckpt["step"]),
                train_seconds=ckpt.get("train_seconds"),
                hardware=ckpt.get("hardware"),
                recipe=config.get("name"),
                variant=config.get("variant"),
                best=ckpt.get("best"),
                init=ckpt.get("init"),
            )
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many types for damaged or foreign files
                raise ConfigError(f"model.init: cannot read {path} ({exc})") from None
            info.update(self._card_record(path))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(
                f"model.init: {path} does not fit {self.spec.name!r}: {exc}"
            ) from None
        return info

    def _card_record(self, path: str) -> dict[str, Any]:
        """The ``init`` record of a weights file that a model card beside it ships, else {}."""
        target = Path(path).resolve()
        cards, _ = find_cards(target.parent)
        card = next((c for c in cards if c.weights and c.weights_path.resolve() == target), None)
        if card is None:
            return {}
        if card.architecture != self.spec.name:
            raise ConfigError(
                f"model.init: {path} holds {card.architecture!r} (its card {card.path.name}), "
                f"the config builds {self.spec.name!r}"
            )
        t = card.training or {}
        before = t.get("initialised_from")
        seconds = t.get("train_seconds")  # the card's total: this record's run is the rest
        if seconds is not None:
            seconds -= sum(float(i.get("train_seconds") or 0.0) for i in lineage(before))
        return {
            "card": os.fspath(card.path.resolve()),
            "weights": t.get("weights"),
            "steps": int(t.get("run_steps") or t.get("steps") or 0),
            "train_seconds": seconds,
            "hardware": t.get("hardware"),
            "recipe": t.get("recipe"),
            "variant": t.get("variant"),
            "best": None,
            "init": before,
        }

    def _build_losses(self) -> None:
        from training.losses import build_loss

        loss_cfg = {
            k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.config["loss"].items()
        }
        perceptual = loss_cfg.get("perceptual")
        if isinstance(perceptual, dict):
            # The perceptual loss maps images to [0, 1] before VGG: it must know the range.
            perceptual.setdefault("value_range", [self.low, self.high])
        elif perceptual is not None:
            loss_cfg["perceptual"] = {"weight": perceptual, "value_range": [self.low, self.high]}
        try:
            self.loss_fn = build_loss(loss_cfg).to(self.device)
        except ValueError as exc:
            raise ConfigError(f"loss: {exc}") from None
        adv = self.config.get("adversarial")
        self.adv = None
        if adv:
            from training.adversarial import build_adversarial

            options = {
                k: v
                for k, v in adv.items()
                if k
                not in ("weight", "start", "discriminator", "optimizer", "schedule", "grad_clip")
            }
            try:
                self.adv = build_adversarial(options)
            except ValueError as exc:
                raise ConfigError(f"adversarial: {exc}") from None
            self.adv_weight = float(adv.get("weight", 0.01))
            self.adv_start = steps_of(adv.get("start", 0), self.total_steps, "adversarial.start")
            self.d_grad_clip = adv.get("grad_clip")

    def _build_optimisers(self) -> None:
        cfg = self.config
        self.optimizer = build_optimizer(self.model_module.parameters(), cfg["optimizer"])
        try:
            self.schedule: LRSchedule = build_schedule(cfg["schedule"], self.total_steps)
        except ValueError as exc:
            raise ConfigError(f"schedule: {exc}") from None
        self.d_optimizer = None
        self.d_schedule: LRSchedule | None = None
        if self.disc_module is not None:
            adv = cfg["adversarial"]
            d_opt = {**cfg["optimizer"], **(adv.get("optimizer") or {})}
            self.d_optimizer = build_optimizer(self.disc_module.parameters(), d_opt)
            try:
                self.d_schedule = build_schedule(
                    adv.get("schedule") or cfg["schedule"], self.total_steps
                )
            except ValueError as exc:
                raise ConfigError(f"adversarial.schedule: {exc}") from None
        amp = cfg["train"]["amp"] if self.device.type == "cuda" else "none"
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            amp = "fp16"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

    def _build_loader(self) -> None:
        data = self.config["data"]
        self.batch_size = int(data["batch_size"])
        self.sampler = InfiniteSampler(
            len(self.dataset),
            seed=self.seed,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
            start=self.position,
        )
        workers = int(data["workers"])
        # Worker seeds come from this generator, not from the global torch RNG, so creating
        # the loader (at step 0 or at a resume) does not shift the training randomness.
        generator = torch.Generator().manual_seed(self.seed)
        self.loader = torch.utils.data.DataLoader(
            EpochIndexedDataset(self.dataset),
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            worker_init_fn=_worker_init if workers else None,
            generator=generator,
            persistent_workers=workers > 0,
            prefetch_factor=2 if workers else None,
        )
        self._batches: Iterator[dict[str, torch.Tensor]] | None = None

    # --- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (rank 0's view; RNG states of every rank)."""
        rng = capture_rng_state()
        if self.ctx.distributed:
            states: list[Any] = [None] * self.ctx.world_size
            dist.all_gather_object(states, rng)
            rng_all = states
        else:
            rng_all = [rng]
        state = {
            "step": self.step,
            "config": self.config,
            "model_name": self.spec.name,
            "model": self.model_module.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(self.position),
            "rng": rng_all,
            "world_size": self.ctx.world_size,
            "best": dict(self.best),
            "metrics": self.last_metrics,
            "train_seconds": self.train_seconds + (time.perf_counter() - self._run_started),
            "hardware": list(self.hardware),
            "init": self.init_info,
        }
        if self.disc_module is not None:
            state.update(
                discriminator=self.disc_module.state_dict(),
                d_optimizer=self.d_optimizer.state_dict(),
                d_schedule=self.d_schedule.state_dict(),
                adversarial=self.adv.state_dict(),
            )
        return state

    def _load_state(self, ckpt: Mapping[str, Any]) -> None:
        if ckpt.get("slim"):
            raise ConfigError(
                "the checkpoint was slimmed (`rtdeblur checkpoint slim`) and keeps weights only: "
                "it cannot resume a run; start a new one from it with --set model.init=FILE"
            )
        if ckpt.get("model_name") != self.spec.name:
            raise ConfigError(
                f"the checkpoint trained {ckpt.get('model_name')!r}, the config builds "
                f"{self.spec.name!r}"
            )
        self.model_module.load_state_dict(ckpt["model"])
        if self.ema is not None:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:  # EMA switched on at resume: start it from the current weights
                self.ema = ModelEMA(self.model_module, self.ema.decay, self.ema.warmup)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.disc_module is not None:
            if "discriminator" not in ckpt:
                raise ConfigError("the config trains adversarially, the checkpoint did not")
            self.disc_module.load_state_dict(ckpt["discriminator"])
            self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
            self.adv.load_state_dict(ckpt["adversarial"])
        self.step = int(ckpt["step"])
        try:
            self.position = InfiniteSampler.position_from(
                ckpt.get("sampler"), len(self.dataset), self.seed
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.best = dict(ckpt.get("best") or self.best)
        self.last_metrics = ckpt.get("metrics")
        self.train_seconds = float(ckpt.get("train_seconds") or 0.0)
        self.hardware = list(ckpt.get("hardware") or [])
        rng = ckpt.get("rng") or []
        same_world = int(ckpt.get("world_size", 1)) == self.ctx.world_size
        if rng and same_world:
            restore_rng_state(rng[self.ctx.rank])
        elif rng:
            # Another process count: the data order continues, per-rank randomness cannot.
            restore_rng_state(rng[0])
            torch.manual_seed(self.seed + 1000 * self.ctx.rank + self.step)

    def save(self, name: str = LAST) -> Path | None:
        """Write a checkpoint in the run folder (collective under DDP; rank 0 writes).

        Returns:
            The path written (None on other ranks).
        """
        state = self.state_dict()
        if not self.ctx.is_main:
            return None
        return save_checkpoint(state, self.out_dir / name)

    # --- one iteration ----------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def _to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.high - self.low) + self.low

    def _next_batch(self) -> dict[str, torch.Tensor]:
        if self._batches is None:
            self._batches = iter(self.loader)
        return next(self._batches)

    def _clip(self, params: Any, optimizer: torch.optim.Optimizer, max_norm: Any) -> None:
        if max_norm is None:
            return
        self.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, float(max_norm))

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run one iteration on a batch.

        Args:
            batch: ``{"blur", "sharp"}`` float tensors in [0, 1].

        Returns:
            Detached scalars: ``loss`` (the generator's total) and its weighted parts
            (``adv`` for the adversarial term, ``d`` for the discriminator's loss).

        Shape:
            - batch["blur"], batch["sharp"]: :math:`(N, 3, H, W)`
        """
        dev = self.device
        fmt = self.memory_format
        blur = self._to_model_range(batch["blur"].to(dev, non_blocking=True, memory_format=fmt))
        sharp = self._to_model_range(batch["sharp"].to(dev, non_blocking=True, memory_format=fmt))
        lr = self.schedule.apply(self.optimizer, self.step)
        with self._autocast():
            outputs = self.model(blur)
        outputs = [o.float() for o in outputs] if isinstance(outputs, list) else outputs.float()
        total, parts = self.loss_fn(outputs, sharp)
        logged = dict(parts)
        final = final_output(outputs)
        if self.adv is not None and self.step >= self.adv_start:
            self.d_schedule.apply(self.d_optimizer, self.step)
            with self._autocast():
                d_loss = self.adv.d_loss(self.disc, sharp, final.detach())
            self.d_optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self._clip(self.disc_module.parameters(), self.d_optimizer, self.d_grad_clip)
            self.scaler.step(self.d_optimizer)
            # G's term through the bare module with D frozen: no gradients for D, and DDP's
            # reducer (which expects one backward per forward of the wrapper) is not involved.
            self.disc_module.requires_grad_(False)
            try:
                with self._autocast():
                    g_adv = self.adv.g_loss(self.disc_module, sharp, final)
            finally:
                self.disc_module.requires_grad_(True)
            weighted = self.adv_weight * g_adv.float()
            total = total + weighted
            logged["adv"] = weighted.detach()
            logged["d"] = d_loss.detach().float()
        logged = {"loss": total.detach(), **logged}
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.step < self.freeze_steps:
            # Frozen backbone: drop its gradients (DDP still reduces them; the optimiser then
            # leaves those weights and their moments untouched).
            for p in self.frozen_params:
                p.grad = None
        self._clip(
            self.model_module.parameters(), self.optimizer, self.config["train"]["grad_clip"]
        )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model_module)
        self.step += 1
        self.position += self.batch_size * self.ctx.world_size
        self.last_lr = lr
        return logged

    # --- validation -------------------------------------------------------------------------

    def _evaluator(self) -> Evaluator | None:
        section = self.config["data"].get("val")
        if not section:
            return None
        if self.evaluator is None:
            lpips = None
            if section.get("lpips"):
                lpips, why = load_lpips(self.device)
                if why:
                    self.progress.message(why)
            self.evaluator = Evaluator(
                validation_pairs(section), lpips, batch_size=int(section.get("batch_size", 8))
            )
        return self.evaluator

    def validate(self) -> dict[str, Any] | None:
        """PSNR/SSIM (and LPIPS when enabled) on the fixed validation set, rank 0 only.

        Uses the EMA weights when EMA is on. Also reports the blurry inputs' numbers.

        Returns:
            The summary (see :meth:`training.evaluate.EvalReport.summary`), or None when
            there is no validation set or on other ranks.
        """
        if not self.ctx.is_main:
            return None
        evaluator = self._evaluator()
        if evaluator is None:
            return None
        net = self.ema.module if self.ema is not None else self.model_module
        report = evaluator.run(TorchRestorer(net, (self.low, self.high), self.device))
        summary = report.summary()
        summary["ema"] = self.ema is not None
        return summary

    # --- the loop ---------------------------------------------------------------------------

    def _barrier(self) -> None:
        if self.ctx.distributed:
            dist.barrier()

    def _reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.ctx.distributed:
            values = values.to(self.device)
            dist.all_reduce(values)
            values /= self.ctx.world_size
        return values

    def _log_train(
        self, history: list[dict[str, torch.Tensor]], seconds: float
    ) -> dict[str, float]:
        names = list(history[-1])
        stacked = torch.stack(
            [
                torch.stack([h.get(n, torch.tensor(float("nan"))).float().cpu() for n in names])
                for h in history
            ]
        )
        means = self._reduce_mean(stacked.nanmean(0)).cpu().tolist()
        record = {"kind": "train", "step": self.step}
        record.update({n: float(v) for n, v in zip(names, means, strict=True)})
        record["lr"] = float(self.last_lr)
        record["steps_per_s"] = len(history) / seconds if seconds > 0 else None
        record["epoch"] = self.position // max(1, len(self.dataset))
        self.log.write(record)
        return {k: record[k] for k in names}

    def _after_validation(self, summary: dict[str, Any] | None) -> None:
        if summary is None:
            return
        self.last_metrics = summary
        self.log.write({"kind": "val", "step": self.step, **summary})
        psnr, psnr_in = summary["psnr"], summary["psnr_input"]
        ssim, ssim_in = summary["ssim"], summary["ssim_input"]
        self.progress.message(
            f"step {self.step}: val PSNR {psnr:.2f} dB (input {psnr_in:.2f}, "
            f"{psnr - psnr_in:+.2f}), SSIM {ssim:.4f} (input {ssim_in:.4f})"
        )

    def _validate_and_save(self) -> None:
        """Validate (rank 0), then write best (when improved) and last checkpoints."""
        summary = self.validate() if self.ctx.is_main else None
        self._after_validation(summary)
        improved = False
        if summary is not None and summary["psnr"] > self.best["psnr"]:
            self.best = {"psnr": summary["psnr"], "step": self.step}
            improved = True
        if self.ctx.distributed:
            flag = [improved]
            dist.broadcast_object_list(flag, src=0)
            improved = bool(flag[0])
            best = [self.best]
            dist.broadcast_object_list(best, src=0)
            self.best = best[0]
        last = self.save(LAST)
        if improved and last is not None:
            link_checkpoint(last, self.out_dir / BEST)
        if self.ctx.is_main:
            self._plot()
        self._barrier()

    def _plot(self) -> None:
        try:
            plot_run(read_log(self.log.path), self.out_dir / PLOT_FILE, self.config.get("name", ""))
        except (OSError, ValueError) as exc:  # a plot never stops training
            self.progress.message(f"plot not written: {exc}")

    def fit(self, until: int | None = None, time_limit: float | None = None) -> dict[str, Any]:
        """Train to ``train.steps`` (or stop early after step ``until``, as an interruption).

        Validates every ``train.val_every`` steps and at the end; writes ``last.pt`` every
        ``train.checkpoint_every`` steps, after each validation and at the end, and
        ``best.pt`` whenever the validation PSNR improves.

        Args:
            until: stop after this step (a checkpoint is written there), for tests and
                time-boxed jobs; the schedule still spans ``train.steps``.
            time_limit: stop after the first step that ends this many seconds after the
                call (every rank at the same step), with a checkpoint there, for jobs with
                a wall-clock limit; ``--resume`` continues exactly.

        Returns:
            ``{"step", "best", "metrics", "last", "out_dir", "stopped_early"}``.
        """
        train = self.config["train"]
        stop = self.total_steps if until is None else min(int(until), self.total_steps)
        deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
        history: list[dict[str, torch.Tensor]] = []
        t_log = time.perf_counter()
        self._run_started = t_log
        machine = describe_hardware(self.device, self.ctx.world_size)
        if machine not in self.hardware:
            self.hardware.append(machine)
        if self.ctx.is_main and self.step == 0:
            self.log.write(
                {
                    "kind": "start",
                    "step": 0,
                    "model": self.spec.name,
                    "world_size": self.ctx.world_size,
                    "device": str(self.device),
                    "amp": str(self.amp_dtype) if self.amp_dtype else "none",
                }
            )
        try:
            while self.step < stop:
                history.append(self.train_step(self._next_batch()))
                if self.step < stop and self._time_is_up(deadline):
                    stop = self.step
                at_end = self.step == stop
                if self.step % train["log_every"] == 0 or at_end:
                    now = time.perf_counter()
                    shown = self._log_train(history, now - t_log)
                    history, t_log = [], now
                    self.progress.update(self.step, shown)
                else:
                    self.progress.update(self.step)
                if self.step % train["val_every"] == 0 or self.step == self.total_steps:
                    self._validate_and_save()
                elif self.step % train["checkpoint_every"] == 0 or at_end:
                    self.save(LAST)
                    self._barrier()
        finally:
            self.progress.close()
            self.train_seconds += time.perf_counter() - self._run_started
            self._run_started = time.perf_counter()
        return {
            "step": self.step,
            "best": dict(self.best),
            "metrics": self.last_metrics,
            "last": os.fspath(self.out_dir / LAST),
            "out_dir": os.fspath(self.out_dir),
            "stopped_early": self.step < self.total_steps,
        }

    def _time_is_up(self, deadline: float | None) -> bool:
        """Whether ``deadline`` has passed, agreed by every rank (the latest clock decides)."""
        if deadline is None:
            return False
        up = time.perf_counter() >= deadline
        if self.ctx.distributed:
            flag = torch.tensor([float(up)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            up = bool(flag.item())
        return up

    def close(self) -> None:
        """Stop DataLoader workers and leave the process group."""
        self._batches = None
        if self.ctx.distributed and dist.is_initialized():
            dist.destroy_process_group()


def describe_hardware(device: torch.device, world_size: int) -> str:
    """The processor (CPU model and cores, or GPU name) a run trains on, for the model card."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world_size} × {name}" if world_size > 1 else name
    from engine.bench import describe_machine

    return describe_machine("cpu")
