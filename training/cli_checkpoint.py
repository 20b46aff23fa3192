"""``rtdeblur checkpoint``: slim, split and join training checkpoints for transfer.

::

    rtdeblur checkpoint slim runs/mimo_unet/best.pt -o best.slim.pt --weights ema
    rtdeblur checkpoint split best.slim.pt -o parts/ --part-mib 16
    rtdeblur checkpoint join parts/best.slim.pt.parts.json -o runs/mimo_unet/best.pt

``slim`` keeps what ``rtdeblur export``, ``rtdeblur eval`` and ``model.init`` read (weights,
config, metrics, training time and lineage) and drops what only ``--resume`` needs.
``split`` cuts any file into parts of at most ``--part-mib`` MiB with a manifest of sizes and
sha256 sums; ``join`` checks every part and the whole before it writes the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``checkpoint`` sub-command and its actions."""
    parser = subparsers.add_parser(
        "checkpoint",
        help="slim, split and join training checkpoints (to move them through size limits)",
        description="Slim a checkpoint to what export, eval and model.init read; split any "
        "file into checked parts of a given size, and join them again.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    slim = actions.add_parser(
        "slim", help="a weights-only copy for export, eval and model.init (cannot --resume)"
    )
    slim.add_argument("checkpoint", type=Path)
    slim.add_argument("-o", "--out", type=Path, required=True, help="the slim copy")
    slim.add_argument(
        "--weights",
        choices=("both", "ema", "raw"),
        default="both",
        help="which weights to keep (default both; ema: what export and model.init use)",
    )
    split = actions.add_parser("split", help="cut a file into parts with a checked manifest")
    split.add_argument("file", type=Path)
    split.add_argument("-o", "--out", type=Path, required=True, help="folder for the parts")
    split.add_argument(
        "--part-mib", type=float, default=16.0, help="largest part in MiB (default 16)"
    )
    join = actions.add_parser("join", help="check the parts and put the file together")
    join.add_argument("manifest", type=Path, help="the NAME.parts.json that split wrote")
    join.add_argument("-o", "--out", type=Path, help="the file (default: NAME beside the parts)")
    join.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(func=run)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def run(args: argparse.Namespace) -> int:
    """Carry out the action; returns the exit status."""
    import json

    from training.checkpoint import CheckpointError, join_parts, slim_checkpoint, split_file

    try:
        if args.action == "slim":
            if args.out.resolve() == args.checkpoint.resolve():
                raise ValueError("the slim copy must not replace the checkpoint it comes from")
            state = slim_checkpoint(args.checkpoint, args.out, args.weights)
            dropped = ", ".join(state["slim"]["dropped"]) or "nothing"
            print(
                f"{args.out}: {_mib(args.out.stat().st_size)} (from "
                f"{_mib(args.checkpoint.stat().st_size)}; step {state['step']}, "
                f"weights {args.weights}; dropped {dropped})"
            )
        elif args.action == "split":
            if args.part_mib <= 0:
                raise ValueError(f"--part-mib must be positive, got {args.part_mib}")
            manifest = split_file(args.file, args.out, int(args.part_mib * (1 << 20)))
            parts = json.loads(manifest.read_text())["parts"]
            for part in parts:
                print(f"{args.out / part['file']}: {_mib(part['size'])}")
            print(f"{manifest}: {len(parts)} part(s); rebuild with `rtdeblur checkpoint join`")
        else:
            if not args.manifest.is_file():
                raise FileNotFoundError(f"no such manifest: {args.manifest}")
            out = join_parts(args.manifest, args.out, overwrite=args.overwrite)
            print(f"{out}: {_mib(out.stat().st_size)}, every part and the whole checked")
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"rtdeblur checkpoint: {exc}", file=sys.stderr)
        return 2
    return 0
