import threading
import time

import numpy as np
import pytest

from engine.pipeline.lanes import FrameLanes
from tests.engine.fakes import Recorder


def _frame(value, h=6, w=7):
    return np.full((h, w, 3), value, np.uint8)


def test_frames_run_side_by_side_and_come_back_as_their_own_arrays():
    gate = threading.Barrier(3)  # the two copies and this test: all must be there at once
    copies = [Recorder(i, gate=gate) for i in range(2)]
    lanes = FrameLanes(copies)
    assert lanes.lanes == 2 and lanes.free == 2 and lanes.typical_seconds() is None
    done = []
    first = lanes.submit(_frame(10), on_done=done.append)
    second = lanes.submit(_frame(20), on_done=done.append)
    with pytest.raises(RuntimeError, match="busy"):
        lanes.submit(_frame(30))  # both copies wait at the barrier for this test
    gate.wait(timeout=10)
    a, b = first.result(timeout=10), second.result(timeout=10)
    assert (a.lane, b.lane) == (0, 1)
    # Each frame carries the index of the copy that ran it; the result is not its buffer.
    assert int(a.frame[0, 0, 0]) == 10 and int(b.frame[0, 0, 0]) == 21
    assert a.frame is not copies[0]._out and b.frame is not copies[1]._out
    assert copies[0].threads.isdisjoint(copies[1].threads)
    assert a.seconds >= 0 and b.ended >= b.started
    lanes.wait()
    assert set(done) == {first, second} and lanes.free == 2 and lanes.busy == 0
    assert lanes.typical_seconds() is not None
    # The next frame on copy 0 does not overwrite the first result.
    gate.reset()
    for copy in copies:
        copy.gate = None
    lanes.submit(_frame(40)).result(timeout=10)
    assert int(a.frame[0, 0, 0]) == 10
    lanes.close()
    with pytest.raises(RuntimeError, match="closed"):
        lanes.submit(_frame(50))
    assert lanes.free == 0
    assert not any(c.closed for c in copies)  # the copies stay the caller's


def test_a_failing_copy_fails_its_frame_and_is_free_again():
    lanes = FrameLanes([Recorder(0, fail=True), Recorder(1)])
    bad = lanes.submit(_frame(1))
    with pytest.raises(RuntimeError, match="copy 0 failed"):
        bad.result(timeout=10)
    lanes.wait()
    assert lanes.free == 2
    good = [lanes.submit(_frame(5)), lanes.submit(_frame(6))]
    lanes.wait()
    outcomes = sorted(f.exception() is None for f in good)
    assert outcomes == [False, True]  # one ran on the failing copy, one on the good one
    lanes.close()
    with pytest.raises(ValueError, match="at least one"):
        FrameLanes([])


def test_starts_are_spaced_by_the_typical_time_over_the_lanes():
    class Sleeper(Recorder):
        def __init__(self, index, seconds, release):
            super().__init__(index)
            self.seconds, self.release = seconds, release

        def infer(self, frames):
            if self.release is not None:
                self.release.wait(timeout=10)
            else:
                time.sleep(self.seconds)
            return super().infer(frames)

    release = threading.Event()
    copies = [Sleeper(0, 0.05, None), Sleeper(1, 0.05, None)]
    lanes = FrameLanes(copies)
    assert lanes.start_delay() == 0.0  # nothing known yet
    lanes.submit(_frame(1)).result(timeout=10)
    typical = lanes.typical_seconds()
    assert typical >= 0.05
    assert lanes.start_delay() == 0.0  # nothing in flight: start at once
    for copy in copies:
        copy.release = release
    before = time.perf_counter()
    lanes.submit(_frame(2))
    after = time.perf_counter()
    # The next start is due half the typical time after the last one.
    delay = lanes.start_delay(now=before)
    assert typical / 2 <= delay <= typical / 2 + (after - before)
    assert lanes.start_delay(now=before + 0.01) == pytest.approx(delay - 0.01)
    assert lanes.start_delay(now=after + typical) == 0.0
    release.set()
    lanes.wait()
    assert lanes.start_delay() == 0.0
    lanes.close()
