"""The protocol every inference backend follows, and the error raised when one cannot run."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


class BackendUnavailableError(RuntimeError):
    """A backend cannot run on this machine.

    The message names what is missing (library, GPU, operator support) and how to get it;
    callers fall back along the chain of :mod:`engine.backends.select`.
    """


@runtime_checkable
class Backend(Protocol):
    """A loaded model that turns uint8 RGB frames into deblurred uint8 RGB frames.

    Constructed from a model card (the ONNX file or the architecture + weights it describes),
    a device and a precision. ``infer`` takes and returns uint8 NHWC batches of the same
    shape; the backend pads to the model's multiple when needed, normalises to the model's
    range, runs, clamps, rounds and crops. It owns its buffers and reuses them between calls
    with the same shape, so the hot path allocates nothing per frame.

    Attributes:
        name: ``"onnxruntime"``, ``"torch"`` or ``"tensorrt"``.
        device: ``"cpu"`` or ``"cuda:N"``.
        precision: one of :data:`PRECISIONS`.
    """

    name: str
    device: str
    precision: str

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a batch.

        Args:
            frames: uint8 RGB frames, C-contiguous.

        Returns:
            uint8 RGB frames of the same shape. The array may be a buffer the backend reuses
            on its next call: copy it to keep it.

        Shape:
            - frames: :math:`(N, H, W, 3)`
            - output: :math:`(N, H, W, 3)`
        """
        ...

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Run once on a batch of ``shape`` (N, H, W, 3) so the first real frame is not slow."""
        ...

    def close(self) -> None:
        """Release the session, engine or device memory."""
        ...


class ClosingBackend:
    """Mixin: a backend used in a ``with`` block is closed at its end."""

    def close(self) -> None:  # pragma: no cover - every backend defines its own
        raise NotImplementedError

    def __enter__(self):
        """Return the backend itself."""
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Close the backend."""
        self.close()


def check_frames(frames: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``frames`` is a uint8 (N, H, W, 3) batch."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be a uint8 numpy array, got {getattr(frames, 'dtype', type(frames))}"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (N, H, W, 3), got {frames.shape}")
