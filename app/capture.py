"""The capture thread: reads the source, paces file playback, fills the latest-frame slot.

One :class:`CaptureThread` per opened source. It owns the source from ``start()`` on (reads,
seeks and closes it in its own thread) and is controlled from the GUI thread through
thread-safe methods (play, pause, step, seek, loop, stop). Frames go into a
:class:`~app.frame_slot.LatestSlot` whose policy follows the source: cameras replace the
waiting frame, files wait for the inference thread (so they never drop a frame; a slow model
slows playback down instead). Files and image folders are paced to their timestamps.

No widget is touched here: the thread reports through Qt signals only.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

from PySide6.QtCore import QThread, Signal

from app.frame_slot import LatestSlot
from app.sources import OpenedSource
from engine.video import TimedFrame

log = logging.getLogger(__name__)

#: Playback that falls this far behind the clock (a slow model) restarts its clock instead of
#: rushing to catch up.
RESYNC_S = 0.25


def _stamp_now(item: CapturedFrame) -> None:
    item.t_capture = time.perf_counter()


@dataclass
class CapturedFrame:
    """A frame as it leaves the capture thread.

    Attributes:
        frame: the source's frame (image, index, timestamps).
        media_time: seconds from the start of the source.
        t_capture: ``time.perf_counter()`` when it entered the pipeline: when the device
            delivered it (cameras), when the latest-frame slot took it (files).
        serial: frames captured so far by this thread, this one included.
        dropped: frames the slot had dropped (live sources) when this one was captured.
        generation: which capture thread produced it (a new source gets a new one).
    """

    frame: TimedFrame
    media_time: float
    t_capture: float
    serial: int
    dropped: int
    generation: int


class CaptureThread(QThread):
    """Reads one source into a latest-frame slot.

    Args:
        opened: the source and what kind it is.
        generation: an id stamped on every frame (to tell sources apart downstream).
        playing: start playing (files) right away; paused sources still show their first frame.
        loop: start a file again at its end.
        parent: Qt parent.

    Signals:
        frame_ready(LatestSlot): the slot went from empty to full.
        ended(int): a file reached its end and playback paused (with the generation).
        failed(int, str): the source stopped with an error (camera unplugged, undecodable
            file), with the generation.
        playing_changed(bool): playback started or paused.
    """

    frame_ready = Signal(object)
    ended = Signal(int)
    failed = Signal(int, str)
    playing_changed = Signal(bool)

    def __init__(
        self,
        opened: OpenedSource,
        generation: int = 0,
        *,
        playing: bool = True,
        loop: bool = True,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.opened = opened
        self.source = opened.source
        self.generation = generation
        self.slot: LatestSlot[CapturedFrame] = LatestSlot(drop_oldest=opened.live)
        self.captured = 0
        self.start_time: float | None = None
        self.setObjectName(f"capture:{opened.label}")
        self._cond = threading.Condition()
        self._stop = False
        self._playing = playing or not opened.seekable
        self._loop = loop
        self._seek_to: float | None = None
        self._steps = 0
        self._deliver_once = True  # a paused file still shows its first frame
        self._times: collections.deque[float] = collections.deque(maxlen=512)
        self._anchor: tuple[float, float] | None = None  # (wall clock, media time)
        self._live_ended = False

    # -- control, from the GUI thread -----------------------------------------------------

    @property
    def playing(self) -> bool:
        """Whether a file is playing (live sources always are)."""
        with self._cond:
            return self._playing

    def set_playing(self, playing: bool) -> None:
        """Play or pause (files and image folders; live sources ignore it)."""
        if not self.opened.seekable:
            return
        with self._cond:
            changed = self._playing != playing
            self._playing = playing
            self._anchor = None
            self._cond.notify_all()
        if changed:
            self.playing_changed.emit(playing)

    def set_loop(self, loop: bool) -> None:
        """Start again at the end of a file, or pause there."""
        with self._cond:
            self._loop = loop

    def step(self, frames: int) -> None:
        """Pause and move ``frames`` frames forward (positive) or back (negative)."""
        if not self.opened.seekable or frames == 0:
            return
        self.set_playing(False)
        with self._cond:
            self._steps += frames
            self._cond.notify_all()

    def seek(self, seconds: float) -> None:
        """Show the frame at ``seconds`` from the start (the latest request wins)."""
        if not self.opened.seekable:
            return
        with self._cond:
            self._seek_to = max(0.0, float(seconds))
            self._steps = 0
            self._cond.notify_all()

    def stop(self) -> None:
        """Ask the thread to end; it closes the source. Follow with ``wait()``."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self.slot.close()

    # -- the thread ------------------------------------------------------------------------

    def run(self) -> None:
        """Read until stopped; report errors through ``failed``."""
        try:
            self._run()
        except Exception as exc:  # reported to the GUI, which shows it
            log.debug("capture of %s failed", self.opened.label, exc_info=True)
            if not self._stopping():
                self.failed.emit(self.generation, str(exc) or type(exc).__name__)
        finally:
            try:
                self.source.close()
            except Exception:  # closing a broken device must not hide the real error
                log.debug("closing %s failed", self.opened.label, exc_info=True)

    def _stopping(self) -> bool:
        with self._cond:
            return self._stop

    def _interrupted(self) -> bool:
        # A waiting hand-over is abandoned when the user seeks or steps: the frame belongs
        # to the old position.
        with self._cond:
            return self._stop or self._seek_to is not None or self._steps != 0

    def _next_command(self) -> tuple[str, float | int | None]:
        """What to do next: ``stop``, ``seek``, ``step``, ``read`` or ``wait``."""
        with self._cond:
            if self._stop:
                return "stop", None
            if self._seek_to is not None:
                target, self._seek_to = self._seek_to, None
                return "seek", target
            if self._steps:
                steps, self._steps = self._steps, 0
                return "step", steps
            if self._playing or self._deliver_once:
                return "read", None
            self._cond.wait(0.5)
            return "wait", None

    def _run(self) -> None:
        while True:
            command, value = self._next_command()
            if command == "stop":
                return
            if command == "wait":
                continue
            if command == "seek":
                self._seek(float(value))
                continue
            if command == "step":
                if value < 0:
                    self._step_back(-int(value))
                else:
                    for _ in range(int(value)):
                        self._deliver_once = True
                        if not self._read_and_hand_over(paced=False):
                            break
                continue
            paced = self.opened.seekable and self.playing and not self._deliver_once
            self._read_and_hand_over(paced=paced)

    def _seek(self, seconds: float, keep_pending: bool = False) -> None:
        # A user's seek discards a frame not yet taken (it belongs to the old position); the
        # loop at a file's end keeps it, or the last frame would never be shown.
        if not keep_pending:
            self.slot.clear()
        base = self.start_time or 0.0
        self.source.seek(base + seconds)
        self._anchor = None
        self._deliver_once = True
        # Frames shown before the target are no longer "behind" the current one.
        while self._times and self._times[-1] >= base + seconds - 1e-6:
            self._times.pop()

    def _step_back(self, frames: int) -> None:
        if not self._times:
            return
        self._times.pop()  # the frame on screen
        target = None
        for _ in range(frames):
            if not self._times:
                break
            target = self._times.pop()
        if target is None:
            return
        base = self.start_time or 0.0
        self._seek(target - base)
        self._read_and_hand_over(paced=False)

    def _read_and_hand_over(self, paced: bool) -> bool:
        frame = self.source.read()
        if frame is None:
            self._at_end()
            return False
        if self.start_time is None:
            self.start_time = frame.time
        if paced:
            self._wait_until_due(frame.time)
            if self._interrupted():
                return False
        self._deliver_once = False
        self._times.append(frame.time)
        self.captured += 1
        item = CapturedFrame(
            frame,
            frame.time - (self.start_time or 0.0),
            time.perf_counter(),
            self.captured,
            self.slot.dropped,
            self.generation,
        )
        # A file's frame is "captured" when the pipeline takes it (it may wait for the slot
        # first, as files never drop); a live frame when the device delivered it.
        restamp = None if self.opened.live else _stamp_now
        if self.slot.put(item, self._interrupted, restamp):
            self.frame_ready.emit(self.slot)
        return True

    def _at_end(self) -> None:
        if not self.opened.seekable:
            # A still image after its one frame, or a video file opened as a camera (how the
            # camera path is tested) after its last: nothing more will come.
            if self.opened.live and not self._live_ended:
                self._live_ended = True
                self.ended.emit(self.generation)
            with self._cond:
                self._deliver_once = False
                if not self._stop:
                    self._cond.wait(0.5)
            return
        with self._cond:
            loop = self._loop and self._playing
        if loop and self.captured > 0:
            restart = self._loop_anchor()
            self._seek(0.0, keep_pending=True)
            self._anchor = restart
            self._deliver_once = False  # the first frame is paced like any other
            return
        with self._cond:
            was_playing = self._playing
            self._playing = False
            self._deliver_once = False
        if was_playing:
            self.playing_changed.emit(False)
            self.ended.emit(self.generation)

    def _loop_anchor(self) -> tuple[float, float] | None:
        """The clock for a file that starts again: its first frame is due one frame interval
        after the last one was, so the last frame stays on screen as long as the others."""
        if self._anchor is None or self.start_time is None or len(self._times) < 2:
            return None
        wall0, media0 = self._anchor
        last, before = self._times[-1], self._times[-2]
        return wall0 + (last - media0) + max(0.0, last - before), self.start_time

    def _wait_until_due(self, media_time: float) -> None:
        now = time.perf_counter()
        if self._anchor is None:
            self._anchor = (now, media_time)
            return
        wall0, media0 = self._anchor
        due = wall0 + (media_time - media0)
        if now - due > RESYNC_S or media_time < media0:
            self._anchor = (now, media_time)  # behind (slow model) or looped: restart the clock
            return
        with self._cond:
            while not (self._stop or self._seek_to is not None or self._steps):
                left = due - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
