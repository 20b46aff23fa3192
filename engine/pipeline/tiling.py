"""Tiled inference with overlap and feathered blending, for frames too large to run whole."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``.

    The last tile is aligned to the end, so every tile has the full size (no ragged edge
    tile with less context) whenever ``length >= tile``.

    Args:
        length: the frame side.
        tile: the tile side.
        overlap: the minimum overlap between neighbours.

    Returns:
        Increasing offsets; ``[0]`` when one tile covers everything.
    """
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    if length <= tile:
        return [0]
    step = tile - overlap
    count = -(-(length - tile) // step) + 1
    # Spread the tiles evenly so every overlap is at least ``overlap``.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def feather_ramp(size: int, overlap: int, feather: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of one tile along one axis.

    On each inner edge the first ``(overlap - feather) / 2`` pixels get weight 0 (they lack
    context), the next ``feather`` pixels ramp linearly up to 1. Two neighbours overlapping by
    ``overlap`` therefore hand over around the middle of the overlap, and no pixel closer than
    ``(overlap - feather) / 2`` to a tile edge is ever used: with ``feather = 0`` the result is
    exact whenever half the overlap covers the receptive-field radius. Edges on the frame
    border keep weight 1.
    """
    w = np.ones(size, np.float32)
    dead = (overlap - feather) // 2
    ramp = np.concatenate(
        [np.zeros(dead, np.float32), (np.arange(feather, dtype=np.float32) + 1) / (feather + 1)]
    )
    if not at_start:
        w[: len(ramp)] = ramp
    if not at_end:
        w[size - len(ramp) :] = np.minimum(w[size - len(ramp) :], ramp[::-1])
    return w


class TiledRunner:
    """Runs a uint8 → uint8 inference function on overlapping tiles of one frame and blends them.

    Each tile is inferred with its neighbours' overlap as context; outputs hand over in the
    middle of each overlap with a linear feather of ``feather`` pixels. When
    ``overlap - feather`` covers the network's receptive field, the result equals whole-frame
    inference up to rounding; a wider feather hides seams of networks whose theoretical
    receptive field is larger than any affordable overlap. The accumulation buffers are
    kept for the next frame of the same size.

    Args:
        infer: function taking a uint8 (N, h, w, 3) batch of tiles and returning the same shape.
        tile: tile side in pixels.
        overlap: minimum overlap between neighbouring tiles in pixels.
        feather: width of the blending ramp inside each overlap (≤ overlap).
        batch: how many tiles to infer per call.
    """

    def __init__(
        self,
        infer: Callable[[np.ndarray], np.ndarray],
        tile: int = 512,
        overlap: int = 64,
        feather: int = 32,
        batch: int = 1,
    ) -> None:
        tile_starts(tile + 1, tile, overlap)  # validates tile vs overlap
        if not 0 <= feather <= overlap:
            raise ValueError(f"feather must be within 0..overlap ({overlap}), got {feather}")
        self.feather = feather
        self.infer = infer
        self.tile = tile
        self.overlap = overlap
        self.batch = max(1, batch)
        self._shape: tuple[int, int] | None = None

    def _layout(self, h: int, w: int) -> None:
        th, tw = min(self.tile, h), min(self.tile, w)
        ys, xs = tile_starts(h, th, self.overlap), tile_starts(w, tw, self.overlap)
        self._boxes = [(y, x) for y in ys for x in xs]
        self._weights = {}
        for y in ys:
            for x in xs:
                wy = feather_ramp(th, self.overlap, self.feather, y == 0, y + th == h)
                wx = feather_ramp(tw, self.overlap, self.feather, x == 0, x + tw == w)
                self._weights[(y, x)] = (wy[:, None] * wx[None, :])[..., None]
        self._tile_hw = (th, tw)
        self._acc = np.zeros((h, w, 3), np.float32)
        self._norm = np.zeros((h, w, 1), np.float32)
        for (y, x), wt in self._weights.items():
            self._norm[y : y + th, x : x + tw] += wt
        self._out = np.empty((h, w, 3), np.uint8)
        self._tiles = np.empty((self.batch, th, tw, 3), np.uint8)
        self._shape = (h, w)

    @property
    def tiles_per_frame(self) -> int:
        """Number of tiles of the last frame size."""
        return len(self._boxes) if self._shape else 0

    def run(self, frame: np.ndarray) -> np.ndarray:
        """Infer one (H, W, 3) uint8 frame tile by tile; returns a reused uint8 buffer."""
        h, w, _ = frame.shape
        if (h, w) != self._shape:
            self._layout(h, w)
        th, tw = self._tile_hw
        self._acc.fill(0.0)
        for i in range(0, len(self._boxes), self.batch):
            boxes = self._boxes[i : i + self.batch]
            tiles = self._tiles[: len(boxes)]
            for k, (y, x) in enumerate(boxes):
                tiles[k] = frame[y : y + th, x : x + tw]
            out = self.infer(tiles)
            for k, (y, x) in enumerate(boxes):
                self._acc[y : y + th, x : x + tw] += out[k] * self._weights[(y, x)]
        np.divide(self._acc, self._norm, out=self._acc)
        np.rint(self._acc, out=self._acc)
        np.clip(self._acc, 0, 255, out=self._acc)
        self._out[...] = self._acc
        return self._out
