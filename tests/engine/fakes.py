"""Stand-in backends for the engine tests."""

import threading

import numpy as np


class Recorder:
    """Adds its index to every pixel and notes the batch sizes and threads it ran on."""

    name, device, precision = "recorder", "cpu", "fp32"

    def __init__(self, index, fail=False, gate=None):
        self.index, self.fail, self.gate = index, fail, gate
        self.calls, self.threads, self.closed = [], set(), False
        self._out = None

    def infer(self, frames):
        if self.gate is not None:
            self.gate.wait(timeout=10)  # every copy must be running at once to pass
        if self.fail:
            raise RuntimeError(f"copy {self.index} failed")
        self.calls.append(len(frames))
        self.threads.add(threading.get_ident())
        if self._out is None or self._out.shape != frames.shape:
            self._out = np.empty_like(frames)
        np.add(frames, self.index, out=self._out)
        return self._out

    def warmup(self, shape):
        self.calls.append(("warmup", shape[0]))

    def close(self):
        self.closed = True
