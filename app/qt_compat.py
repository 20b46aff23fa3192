"""A check of the Qt binding for reference-counting bugs that would abort the app later.

PySide6 6.12.0 on CPython 3.11 takes a reference from ``None`` on every call of a method that
returns nothing (``QTimer.start``, ``QWidget.update``…) and one from ``True`` on every signal
emitted; once the count reaches zero the interpreter aborts ("Fatal Python error:
none_dealloc"), in this app within a minute of video. CPython 3.12 and later make both objects
immortal, and PySide6 before 6.12 does not have the bug. The package requires a binding without
it; :func:`binding_problem` finds it anyway (an environment installed by other means), so the
app can refuse to start with a message instead of crashing mid-video.
"""

from __future__ import annotations

import ctypes
import sys

import PySide6
from PySide6.QtCore import QObject, QTimer, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    signal = Signal()


def _lost(obj: object, call, trials: int, rounds: int = 3) -> bool:
    """Whether ``call()`` takes a reference from ``obj`` each time (in every round: other
    threads may touch ``obj`` meanwhile). What a round took is given back."""
    for _ in range(rounds):
        before = sys.getrefcount(obj)
        for _ in range(trials):
            call()
        taken = before - sys.getrefcount(obj)
        for _ in range(max(taken, 0)):
            _incref(obj)
        if taken < trials:
            return False
    return True


def binding_problem(trials: int = 64) -> str | None:
    """Why the installed Qt binding cannot run the app, or ``None`` when it can.

    Each probe loses at most ``3 × trials`` references, far below the counts at start-up.
    """
    probe, timer = _Probe(), QTimer()
    lost = []
    if _lost(None, timer.stop, trials):
        lost.append("None on every call of a method that returns nothing")
    if _lost(True, probe.signal.emit, trials):
        lost.append("True on every emitted signal")
    if not lost:
        return None
    return (
        f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} loses a reference to "
        f"{' and to '.join(lost)}; the app would abort within a minute. Install another "
        "version: pip install 'PySide6-Essentials<6.12'"
    )
