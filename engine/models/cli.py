"""``rtdeblur models``: the registered networks with their size and cost."""

from __future__ import annotations

import argparse
import json

from engine.models.registry import get_spec, list_models


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` sub-command."""
    parser = subparsers.add_parser(
        "models",
        help="list the registered networks with parameters and MACs",
        description="List every registered network with its parameter count and the "
        "multiply-accumulates of one frame (counted by building the network).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--size",
        default="1280x720",
        metavar="WxH",
        help="frame size the MACs are counted for (default: 1280x720)",
    )
    parser.set_defaults(func=run)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"rtdeblur models: --size must look like 1280x720, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise SystemExit(f"rtdeblur models: --size must be positive, got {text!r}")
    return w, h


def collect(width: int, height: int) -> list[dict]:
    """One row per registered model: defaults, counted parameters and MACs."""
    try:
        from engine.models.complexity import model_complexity
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise SystemExit(
            "rtdeblur models: counting parameters builds the PyTorch networks, which needs "
            "torch: pip install 'rtdeblur[train]'"
        ) from None
    rows = []
    for name in list_models():
        spec = get_spec(name)
        c = model_complexity(name, height, width)
        deviation = None if spec.params is None else c.params / spec.params - 1.0
        rows.append(
            {
                "name": name,
                "summary": spec.summary,
                "params": c.params,
                "params_reference": spec.params,
                "params_deviation": deviation,
                "params_tolerance": spec.params_tolerance if spec.params else None,
                "macs": c.macs,
                "frame": f"{width}x{height}",
                "input_range": list(spec.input_range),
                "multiple": spec.multiple,
                "crop_size": spec.crop_size,
                "multi_output": spec.multi_output,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    frame = rows[0]["frame"] if rows else ""
    header = (
        "model",
        "params",
        "reference",
        "dev",
        f"GMAC@{frame}",
        "range",
        "multiple",
        "crop",
    )
    lines = []
    for r in rows:
        ref = r["params_reference"]
        lo, hi = r["input_range"]
        lines.append(
            (
                r["name"],
                f"{r['params'] / 1e6:.3f} M",
                "—" if ref is None else f"{ref / 1e6:.3f} M",
                "—" if ref is None else f"{100 * r['params_deviation']:+.2f} %",
                f"{r['macs'] / 1e9:.1f}",
                f"[{lo:g}, {hi:g}]",
                str(r["multiple"]),
                str(r["crop_size"]),
            )
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines
    ]
    out.append(
        "MACs count every convolution and matrix product of one forward pass, including the "
        "reflection padding to the model's multiple; reference = published structure (MODELS.md)."
    )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) and return the exit status."""
    width, height = _parse_size(args.size)
    rows = collect(width, height)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
