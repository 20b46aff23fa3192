"""The frame pipeline: a backend plus batching, size limits and the fall-back to tiling."""

from __future__ import annotations

import logging

import numpy as np

from engine.backends.base import Backend, check_frames
from engine.pipeline.tiling import TiledRunner

log = logging.getLogger(__name__)

_OOM_MARKERS = ("out of memory", "failed to allocate", "cudnn_status_alloc_failed", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` reports that the device (or host) ran out of memory."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _OOM_MARKERS)


class FramePipeline:
    """Deblurs frames with a backend, whole when they fit and tiled when they do not.

    Frames above ``max_pixels`` go through :class:`TiledRunner` straight away; a frame whose
    whole-frame inference runs out of memory is retried tiled, and tiling stays on for that
    frame size from then on (the error is logged once, not raised).

    Args:
        backend: any :class:`~engine.backends.base.Backend`.
        max_pixels: frames with more pixels are tiled (``None``: never by size).
        tile: tile side for tiled inference.
        overlap: tile overlap; make it cover the network's receptive field for seamless output.
        feather: blending ramp inside each overlap.
    """

    def __init__(
        self,
        backend: Backend,
        max_pixels: int | None = None,
        tile: int = 512,
        overlap: int = 64,
        feather: int = 32,
    ) -> None:
        self.backend = backend
        self.max_pixels = max_pixels
        self.tiler = TiledRunner(backend.infer, tile=tile, overlap=overlap, feather=feather)
        self._tiled_sizes: set[tuple[int, int]] = set()

    def uses_tiling(self, height: int, width: int) -> bool:
        """Whether frames of this size are (now) tiled."""
        too_big = self.max_pixels is not None and height * width > self.max_pixels
        return too_big or (height, width) in self._tiled_sizes

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Deblur one (H, W, 3) uint8 RGB frame; returns a reused buffer (copy to keep it)."""
        return self.process_batch(frame[None])[0]

    def process_batch(self, frames: np.ndarray) -> np.ndarray:
        """Deblur an (N, H, W, 3) uint8 batch; returns a reused buffer (copy to keep it)."""
        check_frames(frames)
        _, h, w, _ = frames.shape
        if not self.uses_tiling(h, w):
            try:
                return self.backend.infer(frames)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                log.warning("%d×%d frames ran out of memory; switching to tiles (%s)", w, h, exc)
                self._tiled_sizes.add((h, w))
        out = np.empty_like(frames) if len(frames) > 1 else None
        if out is None:
            return self.tiler.run(frames[0])[None]
        for i, frame in enumerate(frames):
            out[i] = self.tiler.run(frame)
        return out
