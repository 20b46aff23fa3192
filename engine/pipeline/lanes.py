"""Frames in flight: copies of a backend that each deblur one frame in their own thread.

A live preview that waits for every result uses one backend at a time. On a CPU where ``k``
one-thread copies outrun one ``k``-thread copy (see :mod:`engine.backends.streams`), handing
each new frame to a free copy and going on with the next one shows more frames per second;
each frame arrives later by about one inference, which the preview's latency figure shows.
Results are taken in the order the frames went in.

Frames handed over in a burst would finish in a burst, and a preview that shows only the
newest finished frame would then skip every other one. :meth:`FrameLanes.start_delay` spaces
the starts by the typical inference time over the number of copies, so results come out
evenly.

This module is part of the torch-free engine core: it imports numpy only.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from engine.backends.base import Backend
from engine.pipeline.runner import FramePipeline

#: Inference times kept to estimate the typical one (the median of these).
TIMING_WINDOW = 15


@dataclass
class LaneResult:
    """One finished frame.

    Attributes:
        frame: the deblurred (H, W, 3) uint8 frame (the caller's own array).
        started, ended: when the copy started and finished it (``time.perf_counter``).
        lane: which copy ran it.
    """

    frame: np.ndarray
    started: float
    ended: float
    lane: int

    @property
    def seconds(self) -> float:
        """How long the copy took."""
        return self.ended - self.started


class FrameLanes:
    """Runs up to ``len(backends)`` frames at once, one per backend copy.

    Args:
        backends: the copies, all of one model and precision (typically the ``backends``
            of a :class:`~engine.backends.streams.StreamedBackend`); they stay the caller's
            to close, after :meth:`close`.

    Raises:
        ValueError: no backend given.

    Attributes:
        pipelines: one :class:`~engine.pipeline.runner.FramePipeline` per copy.
    """

    def __init__(self, backends: Sequence[Backend]) -> None:
        if not backends:
            raise ValueError("FrameLanes needs at least one backend")
        self.pipelines = [FramePipeline(backend) for backend in backends]
        self._free = collections.deque(range(len(self.pipelines)))
        self._lock = threading.Lock()
        self._pending: set[Future] = set()
        self._times: collections.deque[float] = collections.deque(maxlen=TIMING_WINDOW)
        self._last_start: float | None = None
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            len(self.pipelines), thread_name_prefix="rtdeblur-lane"
        )

    @property
    def lanes(self) -> int:
        """How many frames can be in flight."""
        return len(self.pipelines)

    @property
    def free(self) -> int:
        """Copies idle now."""
        with self._lock:
            return len(self._free) if self._pool is not None else 0

    @property
    def busy(self) -> int:
        """Frames in flight now."""
        with self._lock:
            return len(self._pending)

    def typical_seconds(self) -> float | None:
        """The median time of the recent frames (``None`` before the first finished)."""
        with self._lock:
            return statistics.median(self._times) if self._times else None

    def start_delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next start so that starts are spaced evenly.

        Starts are kept at least ``typical_seconds() / lanes`` apart while another frame is
        in flight; with every copy idle, or before any timing is known, there is no wait.

        Args:
            now: the current ``time.perf_counter()`` (default: read it).
        """
        typical = self.typical_seconds()
        with self._lock:
            if typical is None or self._last_start is None or not self._pending:
                return 0.0
            last = self._last_start
        now = time.perf_counter() if now is None else now
        return max(0.0, last + typical / self.lanes - now)

    def submit(self, frame: np.ndarray, on_done: Callable[[Future], None] | None = None) -> Future:
        """Start deblurring ``frame`` on an idle copy.

        Args:
            frame: an (H, W, 3) uint8 RGB frame; it must stay unchanged until the frame is
                finished.
            on_done: called with the future once the frame is finished or failed (in the
                copy's thread; also right away if it finished already).

        Returns:
            A future whose result is a :class:`LaneResult`, or which raises what the copy
            raised. The copy is idle again before the future completes.

        Raises:
            RuntimeError: no copy is idle (check :attr:`free`), or the lanes are closed.
        """
        with self._lock:
            if self._pool is None:
                raise RuntimeError("the frame lanes are closed")
            if not self._free:
                raise RuntimeError("every copy is busy")
            lane = self._free.popleft()
            started = time.perf_counter()
            self._last_start = started
            future = self._pool.submit(self._run, lane, frame)
            self._pending.add(future)
        future.add_done_callback(self._discard)
        if on_done is not None:
            future.add_done_callback(on_done)
        return future

    def _run(self, lane: int, frame: np.ndarray) -> LaneResult:
        started = time.perf_counter()
        try:
            # The copy's output buffer is reused by its next frame: the result is a copy.
            out = self.pipelines[lane].process(frame).copy()
            ended = time.perf_counter()
            with self._lock:
                self._times.append(ended - started)
            return LaneResult(out, started, ended, lane)
        finally:
            with self._lock:
                self._free.append(lane)

    def _discard(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self) -> None:
        """Wait until no frame is in flight (failures stay in their futures)."""
        with self._lock:
            pending = list(self._pending)
        futures.wait(pending)

    def close(self) -> None:
        """Wait for the frames in flight and stop the threads; ``submit`` raises afterwards.

        The backends are not closed: they belong to the caller.
        """
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __repr__(self) -> str:
        """The number of lanes."""
        return f"FrameLanes({self.lanes})"
