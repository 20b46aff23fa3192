"""Live pipeline statistics from the timestamps every stage puts on a frame.

Each displayed frame brings its capture time, the start and end of its inference, when the
GUI thread received it, how long wrapping it for Qt and painting it took, and the counters of
captured, processed and dropped frames. :class:`PipelineStats` keeps the last few seconds of
these for the status bar, and (for benchmarks) every display-path time since it was reset.
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass


@dataclass
class DisplaySample:
    """The timings of one frame that reached the screen.

    Attributes:
        t_capture: when the capture thread handed it over (``perf_counter`` seconds).
        t_infer_start: when inference started.
        t_infer_end: when inference (and composition) ended.
        t_received: when the GUI thread took it.
        t_painted: when its paint ended.
        wrap_ms: GUI time spent wrapping it into QImages and scheduling the repaint.
        paint_ms: GUI time spent painting it.
        captured: frames captured so far by the source's thread.
        processed: frames inferred so far by the inference thread.
        dropped: frames dropped so far (capture slot, display slot and unpainted frames).
    """

    t_capture: float
    t_infer_start: float
    t_infer_end: float
    t_received: float
    t_painted: float
    wrap_ms: float
    paint_ms: float
    captured: int
    processed: int
    dropped: int

    @property
    def display_ms(self) -> float:
        """The display path's cost for this frame: wrapping plus painting."""
        return self.wrap_ms + self.paint_ms

    @property
    def latency_ms(self) -> float:
        """Capture to end of paint."""
        return (self.t_painted - self.t_capture) * 1000.0


@dataclass
class StatsSnapshot:
    """The statistics at one moment (rates over the recent window, medians of times)."""

    capture_fps: float | None = None
    inference_fps: float | None = None
    inference_ms: float | None = None
    display_fps: float | None = None
    latency_ms: float | None = None
    display_ms: float | None = None
    dropped: int = 0
    frames: int = 0


def _rate(first: float, last: float, count: int) -> float | None:
    span = last - first
    return count / span if span > 0 and count > 0 else None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class PipelineStats:
    """Rolling statistics over the last ``window_s`` seconds of displayed frames.

    Args:
        window_s: how much history the rates and medians cover.
        warmup_frames: frames ignored by the benchmark totals after each reset (first
            frames pay for allocations and model warm-up).
    """

    def __init__(self, window_s: float = 2.0, warmup_frames: int = 5) -> None:
        self.window_s = window_s
        self.warmup_frames = warmup_frames
        self._recent: collections.deque[DisplaySample] = collections.deque()
        self.reset_totals()

    def reset_totals(self) -> None:
        """Start the whole-run totals (benchmarks) again."""
        self.total_frames = 0
        self.display_ms_all: list[float] = []
        self.wrap_ms_all: list[float] = []
        self.paint_ms_all: list[float] = []
        self.latency_ms_all: list[float] = []
        self.inference_ms_all: list[float] = []
        self._first: DisplaySample | None = None
        self._last: DisplaySample | None = None

    def clear(self) -> None:
        """Forget the recent window (a new source or model)."""
        self._recent.clear()

    def add(self, sample: DisplaySample) -> None:
        """Record a displayed frame."""
        self._recent.append(sample)
        while self._recent and sample.t_painted - self._recent[0].t_painted > self.window_s:
            self._recent.popleft()
        self.total_frames += 1
        if self.total_frames > self.warmup_frames:
            self.display_ms_all.append(sample.display_ms)
            self.wrap_ms_all.append(sample.wrap_ms)
            self.paint_ms_all.append(sample.paint_ms)
            self.latency_ms_all.append(sample.latency_ms)
            self.inference_ms_all.append((sample.t_infer_end - sample.t_infer_start) * 1000.0)
            if self._first is None:
                self._first = sample
            self._last = sample

    def snapshot(self) -> StatsSnapshot:
        """Rates and medians over the recent window."""
        recent = list(self._recent)
        if not recent:
            return StatsSnapshot()
        first, last = recent[0], recent[-1]
        n = len(recent) - 1
        return StatsSnapshot(
            capture_fps=_rate(first.t_capture, last.t_capture, last.captured - first.captured),
            inference_fps=_rate(
                first.t_infer_end, last.t_infer_end, last.processed - first.processed
            ),
            inference_ms=statistics.median(
                (s.t_infer_end - s.t_infer_start) * 1000.0 for s in recent
            ),
            display_fps=_rate(first.t_painted, last.t_painted, n),
            latency_ms=statistics.median(s.latency_ms for s in recent),
            display_ms=statistics.median(s.display_ms for s in recent),
            dropped=last.dropped,
            frames=self.total_frames,
        )

    def report(self) -> dict[str, float | int | None]:
        """Whole-run figures since the last reset (after the warm-up frames)."""
        first, last = self._first, self._last
        out: dict[str, float | int | None] = {"frames": len(self.display_ms_all)}
        if not self.display_ms_all or first is None or last is None:
            return out
        n = len(self.display_ms_all) - 1
        out.update(
            display_ms_median=statistics.median(self.display_ms_all),
            display_ms_p95=percentile(self.display_ms_all, 95),
            display_ms_max=max(self.display_ms_all),
            wrap_ms_median=statistics.median(self.wrap_ms_all),
            paint_ms_median=statistics.median(self.paint_ms_all),
            latency_ms_median=statistics.median(self.latency_ms_all),
            inference_ms_median=statistics.median(self.inference_ms_all),
            capture_fps=_rate(first.t_capture, last.t_capture, last.captured - first.captured),
            inference_fps=_rate(
                first.t_infer_end, last.t_infer_end, last.processed - first.processed
            ),
            display_fps=_rate(first.t_painted, last.t_painted, n),
            dropped=last.dropped - first.dropped,
        )
        return out
