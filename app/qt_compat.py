"""Work-arounds for bugs in the Qt binding, each detected at run time and applied only if present.

PySide6 6.12.0 on CPython ≤ 3.11: ``SignalInstance.emit()`` returns ``True`` without taking a
reference to it, so every emit from Python code takes one reference from ``True``. CPython
3.12 and later make ``True`` immortal and nothing happens; on 3.11 the interpreter aborts
("Fatal Python error: bool_dealloc") once a few thousand signals have been emitted — a minute
of video in this app. :func:`emit` gives the reference back when (and only when) the probe at
import finds the binding losing it. Every signal the app emits from Python goes through it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    signal = Signal()


def _emit_drops_a_reference(trials: int = 64) -> bool:
    """Whether ``emit()`` takes a reference from the object it returns (see module doc)."""
    probe = _Probe()
    result = probe.signal.emit()
    if not isinstance(result, bool):
        return False
    # Other threads may touch True meanwhile: several rounds must all show the loss.
    losses = 0
    for _ in range(3):
        before = sys.getrefcount(result)
        for _ in range(trials):
            probe.signal.emit()
        after = sys.getrefcount(result)
        if before - after >= trials:
            _incref_n(result, before - after)  # give back what the probe took
            losses += 1
    return losses == 3


def _incref_n(obj: object, n: int) -> None:
    for _ in range(n):
        _incref(obj)


EMIT_DROPS_REFERENCE = _emit_drops_a_reference()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, compensating for the binding's lost reference if it has the bug.

    Args:
        signal: a bound signal (``obj.some_signal``).
        *args: the signal's arguments.
    """
    result = signal.emit(*args)
    if EMIT_DROPS_REFERENCE and isinstance(result, bool):
        _incref(result)
