"""Recording the preview: the deblurred or the side-by-side stream, through the engine's sink.

The same :class:`~engine.video.VideoSink` as ``rtdeblur process`` writes the file: under a
temporary name in the destination folder, renamed when complete, so a crash or a failed
recording never leaves a truncated file under the final name. The sink is opened on the first
frame (its size and timing come from the source) and written from the inference thread, which
owns the :class:`Recorder`; the encoder runs in the sink's own thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.pipeline.compose import side_by_side
from engine.video import SinkError, TimedFrame, VideoSink

log = logging.getLogger(__name__)

DEBLURRED, SIDE_BY_SIDE = "deblurred", "side_by_side"
RECORD_MODES = {DEBLURRED: "Deblurred", SIDE_BY_SIDE: "Side by side"}
# Live recording must keep up with the preview: a faster x264 preset than offline processing,
# at the same visual quality target.
LIVE_PRESET = "veryfast"
LIVE_CRF = 18


@dataclass
class RecordRequest:
    """What to record and where.

    Attributes:
        path: the final file (``.mp4``, ``.mkv`` or ``.mov``).
        mode: ``deblurred`` or ``side_by_side``.
        codec: sink codec (``h264``, ``h265``, ``ffv1``).
        crf: quality for H.264/H.265.
        preset: x264/x265 preset.
    """

    path: Path
    mode: str = DEBLURRED
    codec: str = "h264"
    crf: int | None = LIVE_CRF
    preset: str = LIVE_PRESET


@dataclass
class RecordingResult:
    """How a recording ended.

    Attributes:
        path: the file written (``None`` when nothing was).
        frames: frames written.
        error: why it failed (``None`` when it did not).
        notes: the sink's remarks (repaired timestamps…).
    """

    path: Path | None
    frames: int
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Recorder:
    """Writes the frames it is given to one file, with timestamps that only go forward.

    Timestamps come from the source (a file's own, a camera's capture clock), shifted to
    start at zero; when they jump back (a file looping or seeking during the recording) the
    recording continues one frame duration after its last frame instead.

    Args:
        request: what to record and where.
    """

    def __init__(self, request: RecordRequest) -> None:
        if request.mode not in RECORD_MODES:
            raise ValueError(f"unknown record mode {request.mode!r}")
        self.request = request
        self.frames = 0
        self._sink: VideoSink | None = None
        self._both: np.ndarray | None = None
        self._time_base = Fraction(1, 1000)
        self._step = 1
        self._offset = 0
        self._last: int | None = None

    @property
    def path(self) -> Path:
        """The final file name."""
        return self.request.path

    def _open(self, frame: TimedFrame, fps: float | None) -> None:
        h, w = frame.image.shape[:2]
        width = 2 * w if self.request.mode == SIDE_BY_SIDE else w
        if frame.time_base is not None and frame.pts is not None:
            self._time_base = Fraction(frame.time_base)
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self._step = max(1, round(1 / (rate * self._time_base)))
        self._sink = VideoSink(
            self.request.path,
            width,
            h,
            codec=self.request.codec,
            crf=self.request.crf,
            preset=self.request.preset,
            time_base=self._time_base,
            frame_rate=rate,
        )
        if self.request.mode == SIDE_BY_SIDE:
            self._both = np.empty((h, width, 3), np.uint8)

    def _pts(self, frame: TimedFrame) -> int:
        if frame.pts is not None and frame.time_base == self._time_base:
            raw = frame.pts
        else:
            raw = round(frame.time / self._time_base)
        if self._last is None:
            self._offset = -raw
        pts = raw + self._offset
        if self._last is not None and pts <= self._last:
            self._offset += self._last + self._step - pts
            pts = self._last + self._step
        self._last = pts
        return pts

    def write(self, frame: TimedFrame, result: np.ndarray, fps: float | None) -> None:
        """Add one frame: the result, or original | result side by side.

        Args:
            frame: the source frame (its image is the original).
            result: the deblurred frame as previewed (intensity applied).
            fps: the source's nominal frame rate (sets the file's rate on the first frame).

        Raises:
            SinkError: the file cannot be created or written (folder, disk full, codec).

        Shape:
            - result: :math:`(H, W, 3)` uint8, the size of ``frame.image``
        """
        if self._sink is None:
            self._open(frame, fps)
        if self._both is not None:
            if self._both.shape[0] != result.shape[0] or self._both.shape[1] != 2 * result.shape[1]:
                raise SinkError("the source changed size during the recording")
            image = side_by_side(frame.image, result, self._both)
        else:
            image = result
        self._sink.write(image, self._pts(frame))
        self.frames += 1

    def close(self) -> RecordingResult:
        """Finish the file (flush the encoder, rename it into place)."""
        if self._sink is None:
            return RecordingResult(None, 0, "no frames were recorded")
        try:
            path = self._sink.close()
        except SinkError as exc:
            return RecordingResult(None, 0, str(exc))
        return RecordingResult(path, self._sink.frames_written, None, list(self._sink.notes))

    def abort(self) -> None:
        """Discard the recording (nothing is left under the final name)."""
        if self._sink is not None:
            self._sink.abort()
