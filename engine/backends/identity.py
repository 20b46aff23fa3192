"""A pass-through backend: returns its input unchanged.

It follows the :class:`~engine.backends.base.Backend` protocol so that everything around a
model (capture, composition, display, recording) can be timed on its own: the app's
``--passthrough`` option runs with it to measure its own per-frame overhead, with inference
taking no time. It is never picked by :func:`~engine.backends.select.select_backend`.
"""

from __future__ import annotations

import numpy as np

from engine.backends.base import ClosingBackend, check_frames


class IdentityBackend(ClosingBackend):
    """Copies each batch into a reused output buffer, like a real backend returns its output.

    Attributes:
        name: ``"identity"``.
        device: ``"cpu"``.
        precision: ``"fp32"`` (nothing is computed; present for the protocol).
    """

    name = "identity"
    device = "cpu"
    precision = "fp32"

    def __init__(self) -> None:
        self._output: np.ndarray | None = None

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Return a copy of ``frames`` in a buffer reused by the next same-shape call.

        Shape:
            - frames: :math:`(N, H, W, 3)`
            - output: :math:`(N, H, W, 3)`
        """
        check_frames(frames)
        if self._output is None or self._output.shape != frames.shape:
            self._output = np.empty_like(frames, order="C")
        np.copyto(self._output, frames)
        return self._output

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Allocate the output buffer for ``shape``."""
        self.infer(np.zeros(shape, np.uint8))

    def close(self) -> None:
        """Drop the output buffer."""
        self._output = None

    def __repr__(self) -> str:
        """``IdentityBackend()``."""
        return "IdentityBackend()"
