"""``rtdeblur train``: train a network from a recipe.

Single process::

    rtdeblur train training/configs/fpn_mobilenet_dsc.yaml [--variant smoke] \
        [--set train.steps=1000]

Several GPUs (or CPU processes, with gloo) on one machine::

    torchrun --nproc_per_node 4 -m training.cli_train training/configs/mimo_unet.yaml
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments (shared by the sub-command and ``python -m``)."""
    parser.add_argument(
        "config", help="recipe YAML (training/configs/*.yaml) or a run's config.yaml"
    )
    parser.add_argument("--variant", help="merge the recipe's variants.NAME section (e.g. smoke)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="continue a run: from OUT/last.pt, or from the checkpoint given",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.steps=1000 --set optimizer.lr=2e-4 "
        "(values are YAML: numbers, true/false, null, [lists])",
    )
    parser.add_argument("--out", help="run folder (default: out_dir of the config, runs/NAME)")
    parser.add_argument(
        "--time-limit",
        type=_minutes,
        metavar="MINUTES",
        help="stop after this many minutes of training, with a checkpoint (for jobs with a "
        "wall-clock limit); continue later with --resume",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"minutes must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"minutes must be > 0, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a network from a recipe (training/configs/*.yaml)",
        description="Train a network from a YAML recipe. Checkpoints (last.pt, best.pt), the "
        "resolved config, a JSONL log and a plot go to the run folder. Under torchrun the "
        "run is distributed (DDP).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"rtdeblur train: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, report; returns the exit status."""
    from engine.assets import AssetNotFoundError
    from training.checkpoint import CheckpointError
    from training.config import ConfigError, load_config
    from training.data import DatasetError

    overrides = list(args.overrides)
    if args.out:
        # A JSON string is a YAML scalar: any folder name survives the override parser.
        overrides.append(f"out_dir={json.dumps(args.out)}")
    try:
        config = load_config(args.config, variant=args.variant, overrides=overrides)
    except ConfigError as exc:
        return _fail(str(exc))

    from training.trainer import Trainer

    trainer = None
    try:
        trainer = Trainer(config, resume=args.resume, progress=not args.quiet)
        limit = None if args.time_limit is None else 60.0 * args.time_limit
        result = trainer.fit(time_limit=limit)
    except (ConfigError, DatasetError, CheckpointError, AssetNotFoundError) as exc:
        return _fail(str(exc))
    finally:
        if trainer is not None:
            trainer.close()
    if trainer.ctx.is_main:
        best = result["best"]
        line = f"trained {result['step']} steps; last checkpoint: {result['last']}"
        if best.get("step") is not None:
            line += f"; best val PSNR {best['psnr']:.2f} dB at step {best['step']}"
        print(line)
        if result["stopped_early"]:
            print(
                f"stopped at the time limit, {trainer.total_steps - result['step']} steps short "
                f"of {trainer.total_steps}; continue with: rtdeblur train "
                f"{result['out_dir']}/config.yaml --resume"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training.cli_train`` (what ``torchrun -m`` runs)."""
    parser = argparse.ArgumentParser(prog="rtdeblur train", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("rtdeblur train: interrupted (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
