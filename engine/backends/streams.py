"""Several copies of a CPU backend deblurring the frames of one batch side by side.

On a CPU with few cores, one network run spread over every core leaves cores idle at each
operator's start and end, and small operators barely parallelise at all (quantised depthwise
convolutions least of all). Running ``k`` frames at once, each on its own backend with
``cores / k`` threads, keeps the cores busy: more frames per second for offline work, at the
cost of a longer wait for each single frame. A batch of one frame still runs on one copy.

This module is part of the torch-free engine core: it imports numpy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.backends.base import Backend, ClosingBackend, check_frames


def auto_streams(cores: int | None = None) -> int:
    """How many frames a CPU runs side by side by default: 2 with 2 or more physical cores.

    Two one-thread sessions beat one two-thread session on two cores (measured with
    ``rtdeblur bench --streams 1,2``); with more cores each of the two gets half of them.

    Args:
        cores: physical cores (default: those this process may use).
    """
    if cores is None:
        from engine.backends.onnxruntime_backend import physical_core_count

        cores = physical_core_count()
    return 2 if cores >= 2 else 1


def split_threads(threads: int, streams: int) -> int:
    """Threads each of ``streams`` copies gets out of ``threads`` (at least one)."""
    if streams < 1:
        raise ValueError(f"streams must be ≥ 1, got {streams}")
    return max(1, int(threads) // int(streams))


class StreamedBackend(ClosingBackend):
    """Runs the frames of a batch on several backends at once, in order.

    Frame ``i`` of a batch of ``n`` goes to copy ``i * k // n`` (contiguous runs, one per
    copy), each copy runs in its own thread (the caller's thread runs the first), and the
    results are gathered into one output buffer reused for every batch of the same shape.
    The copies are independent sessions of one model, so every frame gets exactly what a
    single backend would give it.

    Args:
        backends: the copies (at least one), all of the same model, device and precision.

    Raises:
        ValueError: no backend given.

    Attributes:
        name, device, precision: those of the copies.
        streams: how many copies run side by side.
    """

    def __init__(self, backends: Sequence[Backend]) -> None:
        if not backends:
            raise ValueError("StreamedBackend needs at least one backend")
        self.backends = list(backends)
        first = self.backends[0]
        self.name, self.device, self.precision = first.name, first.device, first.precision
        self.streams = len(self.backends)
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(self.streams - 1, thread_name_prefix="rtdeblur-stream")
            if self.streams > 1
            else None
        )
        self._output: np.ndarray | None = None

    @classmethod
    def build(cls, make: Callable[[int], Backend], streams: int, threads: int) -> Backend:
        """``streams`` copies made by ``make(threads_each)``; one copy is returned unwrapped.

        Args:
            make: builds one copy given its thread count.
            streams: how many copies.
            threads: threads to share out between them.

        Returns:
            The plain backend for one stream, else a :class:`StreamedBackend`.
        """
        each = split_threads(threads, streams)
        backends: list[Backend] = []
        try:
            for _ in range(streams):
                backends.append(make(each))
        except BaseException:
            for backend in backends:
                backend.close()
            raise
        return backends[0] if streams == 1 else cls(backends)

    def _chunks(self, n: int) -> list[slice]:
        k = min(self.streams, n)
        bounds = [i * n // k for i in range(k + 1)]
        return [slice(a, b) for a, b in itertools.pairwise(bounds)]

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a batch, its frames spread over the copies.

        Returns:
            uint8 RGB frames of the same shape, in a buffer reused by the next call with the
            same shape (a one-frame batch returns the first copy's buffer): copy to keep it.

        Raises:
            ValueError: ``frames`` is not a uint8 (N, H, W, 3) batch.

        Shape:
            - frames: :math:`(N, H, W, 3)`
            - output: :math:`(N, H, W, 3)`
        """
        check_frames(frames)
        if self._pool is None and self.streams > 1:
            raise RuntimeError("the backend is closed")
        chunks = self._chunks(len(frames))
        if len(chunks) <= 1:
            return self.backends[0].infer(frames)
        if self._output is None or self._output.shape != frames.shape:
            self._output = np.empty_like(frames)
        out = self._output

        def run(index: int) -> None:
            part = chunks[index]
            out[part] = self.backends[index].infer(frames[part])

        futures = [self._pool.submit(run, i) for i in range(1, len(chunks))]
        try:
            run(0)
        finally:
            # Wait for every copy even when one failed: none may still write into `out`.
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return out

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Warm every copy up on its share of a batch of ``shape`` (N, H, W, 3)."""
        n, h, w, c = shape
        for index, part in enumerate(self._chunks(max(n, self.streams))):
            self.backends[index].warmup((part.stop - part.start, h, w, c))

    def close(self) -> None:
        """Close every copy and stop the helper threads; ``infer`` raises afterwards."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for backend in self.backends:
            backend.close()
        self._output = None

    def __repr__(self) -> str:
        """The copies."""
        return f"StreamedBackend({self.streams} × {self.backends[0]!r})"
