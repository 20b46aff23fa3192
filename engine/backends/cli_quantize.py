"""``rtdeblur quantize``: an fp32 ONNX model → a static INT8 (QDQ) copy, with its accuracy cost."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

HELD_OUT_IMAGES = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``quantize`` sub-command."""
    parser = subparsers.add_parser(
        "quantize",
        help="quantise an ONNX model to INT8, calibrated on real photos",
        description="Quantise an exported fp32 ONNX model to static INT8 (QDQ: per-channel "
        "QInt8 weights, QUInt8 activations), calibrated on real photos, then measure the "
        "INT8 output against the fp32 output on photos the calibration did not see. "
        "Needs the onnx package (pip install onnx).",
    )
    parser.add_argument("model", type=Path, help="the fp32 .onnx file")
    parser.add_argument(
        "--card", type=Path, required=True, help="the model card (value range and multiple)"
    )
    parser.add_argument(
        "--calibration", type=Path, required=True, help="folder of real photos to calibrate on"
    )
    parser.add_argument(
        "--held-out",
        type=Path,
        help="folder of photos to measure on (default: calibration-folder photos not used to "
        "calibrate)",
    )
    parser.add_argument(
        "--size", default="640x360", help="calibration frame size WxH (default 640x360)"
    )
    parser.add_argument(
        "--images", type=int, default=32, help="number of calibration photos (default 32)"
    )
    parser.add_argument(
        "--method",
        choices=("percentile", "minmax"),
        default="percentile",
        help="activation range calibration (default percentile; minmax calibrates faster, and "
        "which loses less depends on the weights: measure both)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="INT8 file to write (NAME.int8.onnx)"
    )
    parser.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x360"`` → (height, width) = (360, 640)."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"size must be WIDTHxHEIGHT, e.g. 640x360, got {text!r}")
    return int(match[2]), int(match[1])


def run(args: argparse.Namespace) -> int:
    """Quantise, measure and print the cost table; returns the exit status."""
    from engine.backends.base import BackendUnavailableError
    from engine.backends.quantize import int8_accuracy, list_images, quantize_int8, spread
    from engine.modelcard import ModelCardError, load_card

    def fail(message: str) -> int:
        print(f"rtdeblur quantize: {message}", file=sys.stderr)
        return 2

    try:
        height, width = parse_size(args.size)
        if not args.model.is_file():
            return fail(f"ONNX model not found: {args.model}")
        card = load_card(args.card)
        if args.model.resolve() == card.onnx_path:
            card.verify()
        else:
            print(
                f"note: {args.model} is not the card's file ({card.onnx}); using its range "
                "and multiple anyway"
            )
        if args.images < 1:
            return fail("--images must be at least 1")
        if args.output.resolve() in (args.model.resolve(), card.onnx_path):
            return fail("the output would overwrite the fp32 model; choose another -o")
        photos = list_images(args.calibration)
        calibration = spread(photos, args.images)
        if args.held_out is not None:
            held_out = spread(list_images(args.held_out), HELD_OUT_IMAGES)
        else:
            used = set(calibration)
            unused = [p for p in photos if p not in used]
            held_out = spread(unused, HELD_OUT_IMAGES)
        if not calibration:
            return fail(f"no photos found in {args.calibration}")
        if not held_out:
            return fail("no held-out photos to measure on: pass --held-out DIR")
        input_range = (float(card.input_range[0]), float(card.input_range[1]))
        print(f"calibrating on {len(calibration)} photos at {width}x{height} ({args.method})…")
        path = quantize_int8(
            args.model,
            args.output,
            calibration,
            input_range,
            card.multiple,
            size=(height, width),
            max_images=len(calibration),
            method=args.method,
        )
        result = int8_accuracy(
            args.model, path, held_out, input_range, card.multiple, size=(height, width)
        )
    except (ValueError, FileNotFoundError, ModelCardError, BackendUnavailableError) as exc:
        return fail(str(exc))

    print(f"wrote {path}")
    print(format_cost_table(result))
    expected = f"{card.name}.int8.onnx"
    if path.name != expected or path.parent != card.onnx_path.parent:
        print(f"note: the app loads INT8 from {card.onnx_path.parent / expected}")
    print(
        "These numbers compare INT8 with fp32 on sharp photos. The cost that matters is the "
        "PSNR lost on blurred validation photos against their sharp originals, once trained "
        "weights exist: measure both models there before shipping the INT8 file."
    )
    return 0


def format_cost_table(result: dict) -> str:
    """The accuracy and speed cost of INT8 as a small text table."""

    def db(value: float) -> str:
        return "identical" if math.isinf(value) else f"{value:.2f} dB"

    height, width = result["size"]
    rows = [
        ("held-out photos", f"{result['images']} at {width}x{height}"),
        ("PSNR int8 vs fp32, mean", db(result["psnr_mean"])),
        ("PSNR int8 vs fp32, worst photo", db(result["psnr_min"])),
        ("max abs difference (0-255)", str(result["max_abs_diff"])),
        ("mean abs difference (0-255)", f"{result['mean_abs_diff']:.3f}"),
        ("fp32 ms per frame (median, CPU)", f"{result['fp32_ms']:.1f}"),
        ("int8 ms per frame (median, CPU)", f"{result['int8_ms']:.1f}"),
    ]
    key_width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {key:<{key_width}}  {value}" for key, value in rows)
