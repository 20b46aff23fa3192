"""Where the shipped models and sample media live."""

from __future__ import annotations

from pathlib import Path

from engine.modelcard import ModelCard, load_card

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
MODELS_DIR = RESOURCES_DIR / "models"


def bundled_model_card(name: str) -> ModelCard | None:
    """The card of the shipped model ``name``, or ``None`` if there is none.

    Raises:
        ModelCardError: the card exists but is broken.
    """
    path = MODELS_DIR / f"{name}.json"
    return load_card(path) if path.is_file() else None
