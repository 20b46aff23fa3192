"""``rtdeblur export``: a network of the zoo → ONNX with dynamic frame size."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a network to ONNX (dynamic height and width)",
        description="Export a registered network to ONNX with dynamic batch, height and width, "
        "then check the file in ONNX Runtime against PyTorch at two frame sizes.",
    )
    parser.add_argument("model", help="registered model name (see `rtdeblur models`)")
    parser.add_argument("-o", "--output", required=True, help="destination .onnx file")
    parser.add_argument("--weights", help="state dict (.pth) to load into the network")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (≥ 17, default 17)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, check parity and report; returns the exit status."""
    import numpy as np
    import torch

    from engine.models import create_model, get_spec
    from training.export import export_onnx, onnx_parity

    try:
        spec = get_spec(args.model)
    except KeyError as exc:
        print(f"rtdeblur export: {exc.args[0]}", file=sys.stderr)
        return 2
    model = create_model(args.model)
    if args.weights:
        try:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state.get("model", state))
        except (OSError, RuntimeError, KeyError) as exc:
            print(f"rtdeblur export: cannot load {args.weights}: {exc}", file=sys.stderr)
            return 2
    path = export_onnx(model, args.output, opset=args.opset)
    lo, hi = spec.input_range
    rng = np.random.default_rng(0)
    inputs = [
        (lo + (hi - lo) * rng.random((1, 3, h, w))).astype(np.float32)
        for h, w in ((256, 256), (97, 131))
    ]
    errors = onnx_parity(model, path, inputs)
    print(f"wrote {path}")
    for (h, w), err in zip(((256, 256), (97, 131)), errors, strict=True):
        print(f"  ONNX Runtime vs PyTorch at {w}x{h}: max abs error {err:.2e}")
    return 0
