"""Model cards: the JSON file beside every shipped ONNX model, and the only way models are listed.

A card describes its ONNX file (architecture, version, input value range, the multiple H and W
are padded to, size and cost, training data and recipe, measured metrics) and pins it by
sha256, so a model file that does not match its card is refused instead of run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import atomic_output

CARD_VERSION = 1


class ModelCardError(ValueError):
    """A card is missing, unreadable, incomplete or does not match its ONNX file."""


@dataclass
class ModelCard:
    """What the app and the engine know about one exported model.

    Attributes:
        name: model name shown to users (the file stem, e.g. ``fpn_mobilenet_dsc``).
        architecture: registry name of the network.
        version: model version string.
        input_range: value range the network expects and returns, ``[low, high]``.
        multiple: H and W must be padded to a multiple of this.
        onnx: file name of the fp32 ONNX model, relative to the card.
        sha256: sha256 of that file.
        onnx_fp16: optional file name of the fp16 ONNX model.
        sha256_fp16: its sha256.
        weights: optional PyTorch state dict (``.pth``) for the torch backend.
        params: number of parameters.
        macs_720p: multiply-accumulates for one 1280×720 frame.
        training: data, recipe and config the weights came from.
        metrics: measured validation metrics.
        description: one line for lists.
    """

    name: str
    architecture: str
    version: str
    input_range: list[float]
    multiple: int
    onnx: str
    sha256: str
    onnx_fp16: str | None = None
    sha256_fp16: str | None = None
    weights: str | None = None
    params: int | None = None
    macs_720p: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    card_version: int = CARD_VERSION
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def onnx_path(self) -> Path:
        """Absolute path of the fp32 ONNX file."""
        return self._resolve(self.onnx)

    @property
    def onnx_fp16_path(self) -> Path | None:
        """Absolute path of the fp16 ONNX file, if the model has one."""
        return self._resolve(self.onnx_fp16) if self.onnx_fp16 else None

    @property
    def weights_path(self) -> Path | None:
        """Absolute path of the PyTorch weights, if the model ships them."""
        return self._resolve(self.weights) if self.weights else None

    def _resolve(self, name: str) -> Path:
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / name).resolve()

    def to_json(self) -> str:
        """The card as JSON text (without its own location)."""
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card atomically to ``path`` and remember the location."""
        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_json())
        self.path = path
        return path

    def verify(self, fp16: bool = False) -> Path:
        """Check that the ONNX file exists and matches the card's sha256.

        Args:
            fp16: check the fp16 file instead of the fp32 one.

        Returns:
            The verified file's path.

        Raises:
            ModelCardError: the file is missing or differs from the one the card describes.
        """
        if fp16:
            if not self.onnx_fp16 or not self.sha256_fp16:
                raise ModelCardError(f"model {self.name!r} has no fp16 ONNX file")
            path, expected = self.onnx_fp16_path, self.sha256_fp16
        else:
            path, expected = self.onnx_path, self.sha256
        if not path.is_file():
            raise ModelCardError(f"model {self.name!r}: ONNX file not found: {path}")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelCardError(
                f"model {self.name!r}: {path.name} does not match its card "
                f"(sha256 {actual[:12]}…, card says {expected[:12]}…); re-export the model "
                "or restore the original file"
            )
        return path


_REQUIRED = ("name", "architecture", "version", "input_range", "multiple", "onnx", "sha256")


def load_card(path: str | os.PathLike) -> ModelCard:
    """Read and validate a model card.

    Raises:
        ModelCardError: the file is missing, not JSON, or lacks a required field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelCardError(f"model card not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"model card {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelCardError(f"model card {path} must hold a JSON object")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ModelCardError(f"model card {path} lacks {', '.join(missing)}")
    known = {f for f in ModelCard.__dataclass_fields__ if f != "path"}
    card = ModelCard(**{k: v for k, v in data.items() if k in known})
    lo_hi = card.input_range
    if (
        not isinstance(lo_hi, list)
        or len(lo_hi) != 2
        or not all(isinstance(v, (int, float)) for v in lo_hi)
        or lo_hi[0] >= lo_hi[1]
    ):
        raise ModelCardError(f"model card {path}: input_range must be [low, high]")
    if not isinstance(card.multiple, int) or card.multiple < 1:
        raise ModelCardError(f"model card {path}: multiple must be a positive integer")
    card.path = path
    return card


def find_cards(folder: str | os.PathLike) -> tuple[list[ModelCard], list[str]]:
    """Every model card in ``folder`` (``*.json``).

    Returns:
        The valid cards sorted by name, and one message per file that is not a valid card.
    """
    cards, problems = [], []
    for p in sorted(Path(folder).glob("*.json")):
        try:
            cards.append(load_card(p))
        except ModelCardError as exc:
            problems.append(str(exc))
    return sorted(cards, key=lambda c: c.name), problems


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
