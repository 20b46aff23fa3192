"""``rtdeblur eval``: PSNR, SSIM and LPIPS of a model's outputs and of its inputs.

::

    rtdeblur eval --model fpn_mobilenet_dsc --data ../shared/data/photos/val --csv val.csv
    rtdeblur eval --model runs/lprn/best.pt --data /data/GoPro/test --limit 100

``--model`` is a model card (``NAME.json``), a shipped model's name (both run through the
engine's backends, ONNX Runtime by default) or a training checkpoint (run in PyTorch).
``--data`` is a paired folder (``blur/`` + ``sharp/``, flat or GoPro layout) or a folder of
sharp photos, to which the recipes' validation blur is applied: 8 fixed draws per photo by
default (``--per-image``), the set the model cards report on.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command."""
    parser = subparsers.add_parser(
        "eval",
        help="measure PSNR/SSIM/LPIPS of a model's outputs and inputs on a dataset",
        description="Run a model over a paired folder (or sharp photos with the fixed "
        "synthetic validation blur) and print PSNR, SSIM and LPIPS of the output and of the "
        "input against the sharp images, per image and mean.",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME|FILE",
        help="model card (.json), shipped model name, or training checkpoint (.pt)",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="paired folder (blur/ + sharp/) or folder of sharp photos",
    )
    parser.add_argument("--csv", metavar="OUT", help="also write the table as CSV")
    parser.add_argument("--limit", type=int, metavar="N", help="first N images only")
    parser.add_argument(
        "--backend",
        default="onnxruntime",
        choices=("auto", "onnxruntime", "tensorrt", "torch"),
        help="engine backend for model cards (default: onnxruntime)",
    )
    parser.add_argument("--device", help="cpu or cuda[:N] (default: the backend's usual one)")
    parser.add_argument(
        "--precision",
        help="fp32, fp16, bf16 or int8, backend permitting (default: fp32 for ONNX Runtime on "
        "the CPU, which the model cards report, where the app would run a qualified INT8 "
        "file; the backend's usual one elsewhere)",
    )
    parser.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="checkpoints: use the EMA weights (default: when present)",
    )
    parser.add_argument(
        "--crop", type=int, default=256, help="crop side of the synthetic set (default 256)"
    )
    parser.add_argument(
        "--per-image",
        type=int,
        metavar="N",
        help="synthetic pairs per sharp photo (default: 8, the set the model cards report on; "
        "the recipes choose checkpoints on 1)",
    )
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.set_defaults(func=run)


def _fail(message: str, status: int = 2) -> int:
    print(f"rtdeblur eval: {message}", file=sys.stderr)
    return status


def _restorer(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """(restorer, description, closer) for ``--model``."""
    from pathlib import Path

    from training.checkpoint import is_checkpoint

    if is_checkpoint(args.model):
        import torch

        from training.checkpoint import load_checkpoint
        from training.evaluate import TorchRestorer, model_from_checkpoint

        ckpt = load_checkpoint(args.model)
        model, spec, used_ema = model_from_checkpoint(ckpt, ema=args.ema)
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model.to(device)
        what = (
            f"checkpoint {Path(args.model).name} ({spec.name}, step {ckpt['step']}, "
            f"{'EMA' if used_ema else 'raw'} weights, PyTorch {device})"
        )
        return TorchRestorer(model, spec.input_range, device), what, None

    from engine.backends.select import select_backend
    from engine.resources import resolve_model
    from training.evaluate import BackendRestorer

    card = resolve_model(args.model)
    precision = args.precision
    if precision is None and args.backend == "onnxruntime" and args.device in (None, "cpu"):
        precision = "fp32"
    selection = select_backend(card, args.backend, device=args.device, precision=precision)
    what = f"model {card.name} ({card.architecture}); {selection.describe()}"
    return BackendRestorer(selection.backend), what, selection.backend.close


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table; returns the exit status."""
    from engine.backends.base import BackendUnavailableError
    from engine.modelcard import ModelCardError
    from training.checkpoint import CheckpointError
    from training.data.paired import DatasetError
    from training.evaluate import (
        REPORT_PER_IMAGE,
        Evaluator,
        blur_groups,
        folder_pairs,
        format_groups,
        format_table,
        load_lpips,
        write_csv,
    )

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit must be ≥ 1, got {args.limit}")
    if args.per_image is None:
        args.per_image = REPORT_PER_IMAGE
    if args.per_image < 1:
        return _fail(f"--per-image must be ≥ 1, got {args.per_image}")
    try:
        pairs, data_text, metas = folder_pairs(
            args.data, limit=args.limit, crop=args.crop, per_image=args.per_image
        )
    except DatasetError as exc:
        return _fail(str(exc))
    try:
        restore, model_text, close = _restorer(args)
    except (ModelCardError, BackendUnavailableError, CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    lpips = None
    if not args.no_lpips:
        lpips, why = load_lpips("cpu")
        if why:
            print(why, file=sys.stderr)
    try:
        report = Evaluator(pairs, lpips, batch_size=1).run(restore)
    finally:
        if close is not None:
            close()
    print(model_text)
    print(f"data: {data_text} ({len(pairs)} images)")
    print(format_table(report))
    summary = report.summary()
    if summary["psnr_gain"] is not None and summary["psnr_gain_se"] is not None:
        print(
            f"PSNR gain {summary['psnr_gain']:+.2f} dB, standard error "
            f"{summary['psnr_gain_se']:.2f} dB over {summary['images']} images"
        )
    if metas:
        print("\nBy blur kind and by blur extent (pixels of the photo):")
        print(format_groups(report, blur_groups(metas)))
    if args.csv:
        print(f"wrote {write_csv(report, args.csv)}")
    return 0
