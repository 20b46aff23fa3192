"""The inference worker: one QObject, moved to its own QThread, that owns the backend.

It takes the latest captured frame, runs the model, composes what the window shows (intensity
blend, heat map, display-format copies: all engine functions), writes the recording, and puts
the finished pair in a one-item display slot for the GUI thread. With several backend copies
(``LoadRequest.streams`` > 1 on a CPU) it keeps that many frames in flight: each new frame goes
to an idle copy at once and is shown when it and every frame before it are done (more frames
per second, one frame more delay). Everything it is asked to do
arrives as queued signals, so it runs in the worker's thread between two frames: loading a
model, changing the intensity, starting or stopping a recording. It reports only through
signals and never touches a widget.

Failures keep the previous working state: a model that fails to load leaves the current one
running; a backend that fails at run time is dropped in favour of the last one that worked
(or of showing the original), and the window is told why.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from app.capture import CapturedFrame
from app.frame_slot import LatestSlot
from app.recording import Recorder, RecordingResult, RecordRequest
from engine.backends.base import BackendUnavailableError
from engine.backends.select import Selection, select_backend
from engine.backends.streams import StreamedBackend
from engine.modelcard import ModelCard, ModelCardError
from engine.pipeline.compose import (
    DEFAULT_HEATMAP_GAIN,
    HeatmapScratch,
    blend,
    difference_heatmap,
    display_size,
    to_display,
)
from engine.pipeline.lanes import FrameLanes, LaneResult
from engine.pipeline.runner import FramePipeline
from engine.video import SinkError

log = logging.getLogger(__name__)


@dataclass
class LoadRequest:
    """A model and backend to load.

    Attributes:
        card: the model card (``None`` with no ``factory``: run without a model).
        backend: ``auto``, ``onnxruntime``, ``torch`` or ``tensorrt``.
        device: ``cpu`` or ``cuda`` (``None``: the backend's default).
        precision: ``fp32``, ``fp16``, ``int8``… (``None``: the backend's default).
        factory: builds the :class:`~engine.backends.select.Selection` instead of
            ``select_backend`` (the pass-through backend; tests).
        name: the model name shown (default: the card's).
        streams: frames in flight on a CPU backend (copies that run side by side, see
            :class:`~engine.pipeline.lanes.FrameLanes`); 1: one frame at a time.
    """

    card: ModelCard | None
    backend: str = "auto"
    device: str | None = None
    precision: str | None = None
    factory: Callable[[], Selection] | None = None
    name: str | None = None
    streams: int = 1

    @property
    def model_name(self) -> str | None:
        """The name shown for the model."""
        if self.name is not None:
            return self.name
        return self.card.name if self.card is not None else None


@dataclass
class ActiveModel:
    """The model and backend the worker runs (sent to the window after each change).

    Attributes:
        name: model name.
        backend_label: e.g. ``ONNX Runtime CPU``.
        backend: backend name (``onnxruntime``, ``torch``, ``tensorrt``, ``identity``).
        device: ``cpu`` or ``cuda:N``.
        precision: ``fp32``, ``fp16``…
        describe: the selection's one-line account (what was picked, what was skipped).
        request: the request it was loaded from.
        in_flight: how many frames run at once (copies of the backend side by side).
    """

    name: str
    backend_label: str
    backend: str
    device: str
    precision: str
    describe: str
    request: LoadRequest
    in_flight: int = 1

    @property
    def title(self) -> str:
        """``fpn_mobilenet_dsc on ONNX Runtime CPU (fp32)``."""
        return f"{self.name} on {self.backend_label} ({self.precision})"


@dataclass
class FramePair:
    """A finished frame for the window: the original and the deblurred result.

    Attributes:
        captured: the captured frame (timestamps, counters, source generation).
        original: the input frame (RGB).
        result: the deblurred frame with the intensity applied (RGB); the original itself
            when no model runs.
        heatmap: the difference heat map (RGB) in heat-map mode, else ``None``.
        original_view: ``original`` in Qt's RGB32 layout, resized to the view's scale.
        result_view: ``result`` likewise.
        heatmap_view: ``heatmap`` likewise, or ``None``.
        model: the model that made ``result`` (``None``: none ran).
        t_infer_start: when inference started (``perf_counter``).
        t_infer_end: when inference ended.
        t_ready: when composition ended and the pair was handed to the GUI.
        processed: frames inferred so far by the worker.
        display_dropped: pairs replaced in the display slot before the GUI took them.
        refresh: a re-render of the last frame after a setting changed (not a new frame:
            not recorded, not counted).
        heatmap_gain: the heat map's amplification.

        display_scale: how much the views were resized (1: not at all).

    Shape:
        - original, result, heatmap: :math:`(H, W, 3)` uint8
        - original_view, result_view, heatmap_view: :math:`(h, w, 4)` uint8, the frame's
          size times ``display_scale``
    """

    captured: CapturedFrame
    original: np.ndarray
    result: np.ndarray
    heatmap: np.ndarray | None
    original_view: np.ndarray
    result_view: np.ndarray
    heatmap_view: np.ndarray | None
    model: str | None
    t_infer_start: float
    t_infer_end: float
    t_ready: float
    processed: int
    display_dropped: int
    refresh: bool = False
    heatmap_gain: float = DEFAULT_HEATMAP_GAIN
    display_scale: float = 1.0

    @property
    def compose_ms(self) -> float:
        """Worker time spent composing (blend, heat map, display copies) after inference."""
        return (self.t_ready - self.t_infer_end) * 1000.0


@dataclass
class _Job:
    """A frame in flight on one of the loaded model's copies."""

    item: CapturedFrame
    loaded: _Loaded
    future: Future


@dataclass
class _Loaded:
    selection: Selection
    pipeline: FramePipeline
    info: ActiveModel
    lanes: FrameLanes | None = None
    closed: bool = field(default=False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                if self.lanes is not None:
                    self.lanes.close()
                self.selection.backend.close()
            except Exception:  # a backend that fails to close must not stop the app
                log.debug("closing %s failed", self.info.title, exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def load_error_message(request: LoadRequest, exc: BaseException) -> str:
    """A message for a model that cannot be loaded."""
    name = request.model_name or "the model"
    if isinstance(exc, (ModelCardError, BackendUnavailableError, ValueError)):
        return f"Cannot load {name}: {_one_line(exc)}"
    return f"Cannot load {name}: {type(exc).__name__}: {_one_line(exc)}"


class InferenceWorker(QObject):
    """Runs the model on the latest frame and composes the pair the window shows.

    Create it in the GUI thread, ``moveToThread`` a QThread, and talk to it only through
    queued signals connected to its slots.

    Signals:
        pair_ready(): the display slot went from empty to full; take the pair from ``display``.
        model_loaded(ActiveModel | None): the active model changed (``None``: no model runs).
        model_failed(str): a requested model could not be loaded; the previous one still runs.
        runtime_failed(str): the active backend failed on a frame and was replaced.
        recording_finished(RecordingResult): a recording ended (finished or failed).
    """

    pair_ready = Signal()
    model_loaded = Signal(object)
    model_failed = Signal(str)
    runtime_failed = Signal(str)
    recording_finished = Signal(object)
    _job_done = Signal()  # a frame in flight finished (emitted from a copy's thread)

    def __init__(self) -> None:
        super().__init__()
        self.display: LatestSlot[FramePair] = LatestSlot(drop_oldest=True)
        self.processed = 0
        self._current: _Loaded | None = None
        self._last_good: _Loaded | None = None
        self._fallback: LoadRequest | None = None
        self._intensity = 1.0
        self._heatmap = False
        self._heatmap_gain = DEFAULT_HEATMAP_GAIN
        self._scratch = HeatmapScratch()
        self._recorder: Recorder | None = None
        self._generation = -1
        self._fps: float | None = None
        self._last_item: CapturedFrame | None = None
        self._last_raw: np.ndarray | None = None
        self._last_raw_from: _Loaded | None = None
        self._shape: tuple[int, ...] | None = None
        self._display_scale = 1.0
        self._jobs: collections.deque[_Job] = collections.deque()
        self._capture: LatestSlot | None = None
        self._pump_timer = QTimer(self)  # a child: it moves to the worker's thread with it
        self._pump_timer.setSingleShot(True)
        self._pump_timer.timeout.connect(self._pump)
        self._job_done.connect(self._on_job_done, Qt.ConnectionType.QueuedConnection)

    # -- settings ----------------------------------------------------------------------

    @Slot(int, object)
    def set_source(self, generation: int, fps: object) -> None:
        """Frames of ``generation`` are the ones to process from now on."""
        self._finish_jobs(wait=True, show=False)  # frames of the old source are not shown
        self._pump_timer.stop()
        self._capture = None
        self._generation = generation
        self._fps = float(fps) if fps else None
        self._last_item = None
        self._last_raw = None
        self.display.clear()

    @Slot(float)
    def set_intensity(self, value: float) -> None:
        """Blend of input (0) and result (1); the last frame is shown again with it."""
        self._intensity = min(max(float(value), 0.0), 1.0)
        self.refresh()

    @Slot(float)
    def set_display_scale(self, scale: float) -> None:
        """Resize the display copies to ``scale`` (the view's zoom, below 2×), so that the
        GUI thread copies pixels instead of resampling them; the last frame is redone."""
        scale = min(max(float(scale), 1e-3), 8.0)
        if abs(scale - self._display_scale) > 1e-6:
            self._display_scale = scale
            self.refresh()

    @Slot(bool)
    def set_heatmap(self, enabled: bool) -> None:
        """Compute the difference heat map with every frame (heat-map mode)."""
        if enabled != self._heatmap:
            self._heatmap = bool(enabled)
            self.refresh()

    @Slot(object)
    def load_model(self, request: LoadRequest) -> None:
        """Load a model and backend; keep the current one if that fails."""
        if request.card is None and request.factory is None:
            self._finish_jobs(wait=True)
            self._replace(None)
            self.model_loaded.emit(None)
            self.refresh()
            return
        try:
            loaded = self._build(request)
        except Exception as exc:
            log.debug("loading %s failed", request.model_name, exc_info=True)
            self.model_failed.emit(load_error_message(request, exc))
            return
        backend = loaded.selection.backend
        if self._shape is not None:
            # Warming up at the current frame size loads kernels now, and a model that
            # cannot run this size fails here, while the previous one still runs.
            try:
                backend.warmup((1, *self._shape))
            except Exception as exc:
                loaded.close()
                self.model_failed.emit(load_error_message(request, exc))
                return
        self._finish_jobs(wait=True)  # the frames in flight finish on the model they started on
        self._replace(loaded)
        self.model_loaded.emit(loaded.info)
        self.refresh()

    @staticmethod
    def _build(request: LoadRequest) -> _Loaded:
        if request.factory is not None:
            selection = request.factory()
        else:
            selection = select_backend(
                request.card,
                request.backend,
                request.device,
                request.precision,
                streams=request.streams,
            )
        backend = selection.backend
        info = ActiveModel(
            request.model_name or "model",
            selection.label,
            getattr(backend, "name", "?"),
            getattr(backend, "device", "?"),
            getattr(backend, "precision", "?"),
            selection.describe(),
            request,
            getattr(backend, "streams", 1),
        )
        lanes = FrameLanes(backend.backends) if isinstance(backend, StreamedBackend) else None
        return _Loaded(selection, FramePipeline(backend), info, lanes)

    def _replace(self, loaded: _Loaded | None) -> None:
        old = self._current
        self._current = loaded
        if loaded is None:
            for item in (old, self._last_good):
                if item is not None:
                    item.close()
            self._last_good = None
            self._fallback = None
        elif old is not None and old is not self._last_good:
            old.close()

    # -- frames ------------------------------------------------------------------------

    @Slot(object)
    def process_pending(self, slot: LatestSlot) -> None:
        """Process the frame waiting in the capture slot, if any (frames of an old source
        are dropped)."""
        self._capture = slot
        if self._current is not None and self._current.lanes is not None:
            self._pump()
            return
        item = slot.take()
        if item is None or item.generation != self._generation:
            return
        self._process(item, refresh=False)

    @Slot()
    def refresh(self) -> None:
        """Show the last frame again with the current settings (paused files, stills)."""
        # Frames in flight are composed with the current settings when they finish.
        if self._last_item is not None and not self._jobs:
            self._process(self._last_item, refresh=True)

    # -- frames in flight --------------------------------------------------------------

    @Slot()
    def _pump(self) -> None:
        """Hand the waiting frame to an idle copy, at most one start per ``start_delay``."""
        slot = self._capture
        while slot is not None and slot.full:
            loaded = self._current
            if loaded is None or loaded.lanes is None:
                if not self._jobs:
                    self.process_pending(slot)
                return
            lanes = loaded.lanes
            if not lanes.free:
                return  # a copy that finishes pumps again
            delay = lanes.start_delay()
            if delay > 0:
                if not self._pump_timer.isActive():
                    self._pump_timer.start(max(1, math.ceil(delay * 1000.0)))
                return
            item = slot.take()
            if item is None or item.generation != self._generation:
                continue
            self._shape = item.frame.image.shape
            future = lanes.submit(item.frame.image, on_done=self._notify_done)
            self._jobs.append(_Job(item, loaded, future))

    def _notify_done(self, _future: Future) -> None:
        self._job_done.emit()  # from the copy's thread: queued to this worker's thread

    @Slot()
    def _on_job_done(self) -> None:
        self._finish_jobs(wait=False)
        self._pump()

    def _finish_jobs(self, wait: bool, show: bool = True) -> None:
        """Show finished frames in the order they came (``wait``: every one, waiting).

        Args:
            wait: wait for the frames still in flight too.
            show: compose, record and show them (``False``: drop them).
        """
        while self._jobs and (wait or self._jobs[0].future.done()):
            job = self._jobs.popleft()
            try:
                result: LaneResult = job.future.result()
            except Exception as exc:
                log.debug("inference with %s failed", job.loaded.info.title, exc_info=True)
                if not show or job.loaded.closed:
                    continue
                job.loaded.lanes.wait()  # no copy may run while the model is closed
                t0 = time.perf_counter()
                raw = self._runtime_failure(job.loaded, exc, job.item.frame.image)
                self._show(job.item, raw, self._current, t0, time.perf_counter(), False)
                continue
            if not show or job.item.generation != self._generation:
                continue
            if not job.loaded.closed:
                self._mark_good(job.loaded)
            self._show(job.item, result.frame, job.loaded, result.started, result.ended, False)

    def _infer(self, image: np.ndarray) -> np.ndarray | None:
        loaded = self._current
        if loaded is None:
            return None
        try:
            raw = loaded.pipeline.process(image)
        except Exception as exc:
            log.debug("inference with %s failed", loaded.info.title, exc_info=True)
            return self._runtime_failure(loaded, exc, image)
        self._mark_good(loaded)
        return raw

    def _mark_good(self, loaded: _Loaded) -> None:
        """``loaded`` just ran a frame: it becomes the one to fall back to."""
        if self._last_good is not loaded:
            if self._last_good is not None:
                # Only its request is kept: reloading it is the fall-back if the new one
                # fails later (holding two loaded models would double the memory).
                self._fallback = self._last_good.info.request
                self._last_good.close()
            self._last_good = loaded

    def _reload_fallback(self) -> _Loaded | None:
        """The model that ran before the failing one, loaded again (``None`` if it cannot)."""
        request, self._fallback = self._fallback, None
        if request is None:
            return None
        try:
            loaded = self._build(request)
        except Exception:
            log.debug("reloading %s failed", request.model_name, exc_info=True)
            return None
        return loaded

    def _runtime_failure(
        self, loaded: _Loaded, exc: BaseException, image: np.ndarray
    ) -> np.ndarray | None:
        message = f"{loaded.info.title} failed while running: {_one_line(exc)}."
        fallback = self._last_good if self._last_good is not loaded else None
        loaded.close()
        if self._last_good is loaded:
            self._last_good = None
        if fallback is None:
            fallback = self._reload_fallback()
            self._last_good = fallback
        self._current = fallback
        raw = None
        if fallback is not None:
            message += f" Switched back to {fallback.info.title}."
            try:
                raw = fallback.pipeline.process(image)
            except Exception as again:
                message += f" That failed too ({_one_line(again)})."
                fallback.close()
                self._current = self._last_good = None
        if self._current is None:
            message += " Showing the original until another model or backend is chosen."
        self.runtime_failed.emit(message)
        self.model_loaded.emit(self._current.info if self._current is not None else None)
        return raw

    def _process(self, item: CapturedFrame, refresh: bool) -> None:
        image = item.frame.image
        self._shape = image.shape
        t0 = time.perf_counter()
        if refresh and self._last_raw is not None and self._last_raw_from is self._current:
            raw = self._last_raw  # only a display setting changed: no need to infer again
        else:
            raw = self._infer(image)
        t1 = time.perf_counter()
        self._show(item, raw, self._current, t0, t1, refresh)

    def _show(
        self,
        item: CapturedFrame,
        raw: np.ndarray | None,
        loaded: _Loaded | None,
        t0: float,
        t1: float,
        refresh: bool,
    ) -> None:
        """Compose, record and hand over one frame that ``loaded`` deblurred into ``raw``."""
        image = item.frame.image
        self._last_item, self._last_raw, self._last_raw_from = item, raw, loaded
        if raw is None:
            result = image
        else:
            result = blend(image, raw, self._intensity, out=np.empty_like(image))
        heat = None
        if self._heatmap:
            heat = difference_heatmap(image, result, gain=self._heatmap_gain, scratch=self._scratch)
        scale = self._display_scale
        size = display_size(*image.shape[:2], scale) if scale != 1.0 else None
        original_view = to_display(image, size=size)
        heat_view = to_display(heat, size=size) if heat is not None else None
        if result is image:
            result_view = original_view
        elif heat_view is not None:
            result_view = heat_view  # the heat-map mode shows only the map and the original
        else:
            result_view = to_display(result, size=size)
        t2 = time.perf_counter()
        if not refresh:
            self.processed += 1
            if self._recorder is not None:
                self._record(item, result)
        pair = FramePair(
            item,
            image,
            result,
            heat,
            original_view,
            result_view,
            heat_view,
            loaded.info.name if loaded is not None and raw is not None else None,
            t0,
            t1,
            t2,
            self.processed,
            self.display.dropped,
            refresh,
            self._heatmap_gain,
            scale,
        )
        if self.display.put(pair):
            self.pair_ready.emit()

    # -- recording ---------------------------------------------------------------------

    @Slot(object)
    def start_recording(self, request: RecordRequest) -> None:
        """Record every frame processed from now on (a running recording is finished first)."""
        self.stop_recording()
        self._recorder = Recorder(request)

    @Slot()
    def stop_recording(self) -> None:
        """Finish the recording, if one runs, and report it."""
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            self.recording_finished.emit(recorder.close())

    def _record(self, item: CapturedFrame, result: np.ndarray) -> None:
        recorder = self._recorder
        try:
            recorder.write(item.frame, result, self._fps)
        except (SinkError, OSError, ValueError) as exc:
            recorder.abort()
            self._recorder = None
            self.recording_finished.emit(
                RecordingResult(None, recorder.frames, f"recording stopped: {_one_line(exc)}")
            )

    # -- end ---------------------------------------------------------------------------

    @Slot()
    def shutdown(self) -> None:
        """Finish the recording and release the backends (the window is closing)."""
        self._pump_timer.stop()
        self._finish_jobs(wait=True, show=False)
        self.stop_recording()
        self._replace(None)
        self._last_item = self._last_raw = self._last_raw_from = None
        self.display.close()
