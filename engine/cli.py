"""The ``rtdeblur`` command.

Sub-commands are plugins found through the ``rtdeblur.commands`` entry-point group; each
names a module with a ``register(subparsers)`` function. Modules import their heavy
dependencies (torch, Qt) only when their command runs, so ``rtdeblur --help`` stays fast and
works on an install without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from engine import __version__


def _command_modules() -> list[str]:
    eps = entry_points(group="rtdeblur.commands")
    return [ep.module for ep in sorted(eps, key=lambda ep: ep.name)]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every installed sub-command."""
    parser = argparse.ArgumentParser(
        prog="rtdeblur",
        description="Real-time video deblurring: app, offline processing, training.",
    )
    parser.add_argument("--version", action="version", version=f"rtdeblur {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in _command_modules():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``rtdeblur`` with ``argv`` (default: the process arguments) and return its status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rtdeblur: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
