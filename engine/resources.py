"""Where the shipped models and sample media live, and how a ``--model`` argument is resolved."""

from __future__ import annotations

import os
from pathlib import Path

from engine.modelcard import ModelCard, ModelCardError, find_cards, load_card

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
MODELS_DIR = RESOURCES_DIR / "models"
DEFAULT_MODEL = "fpn_mobilenet_dsc"


def bundled_model_card(name: str) -> ModelCard | None:
    """The card of the shipped model ``name``, or ``None`` if there is none.

    Raises:
        ModelCardError: the card exists but is broken.
    """
    path = MODELS_DIR / f"{name}.json"
    return load_card(path) if path.is_file() else None


def resolve_model(spec: str | os.PathLike | None = None) -> ModelCard:
    """The model card a user named: a card file path, or the name of a shipped model.

    Args:
        spec: ``path/to/NAME.json``, a shipped model's name, or ``None`` for the default.

    Raises:
        ModelCardError: no such card, with the shipped names listed.
    """
    spec = os.fspath(spec) if spec is not None else DEFAULT_MODEL
    if spec.endswith(".json") or os.path.sep in spec or os.path.isfile(spec):
        return load_card(spec)
    card = bundled_model_card(spec)
    if card is not None:
        return card
    shipped, _ = find_cards(MODELS_DIR) if MODELS_DIR.is_dir() else ([], [])
    names = ", ".join(c.name for c in shipped) or "none"
    raise ModelCardError(
        f"no model named {spec!r}; shipped models: {names}; or pass the path of a model card"
    )
