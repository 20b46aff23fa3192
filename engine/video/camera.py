"""Webcams through OpenCV's VideoCapture: listing, format negotiation, measured frame rate.

OpenCV delivers BGR; :class:`CameraSource` converts to RGB once, here at the source, so
everything downstream sees the engine's frame contract. The same class opens a video file
path through OpenCV too, which is how its logic is tested on machines without a camera.
"""

from __future__ import annotations

import collections
import glob
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from engine.video.sources import SourceError, TimedFrame

log = logging.getLogger(__name__)

NO_CAMERAS_MESSAGE = (
    "no cameras found: no video capture device is present (check that a webcam is plugged "
    "in and that this user may open it, e.g. is in the 'video' group on Linux)"
)


class CameraError(SourceError):
    """A camera cannot be opened (busy, missing) or stopped delivering frames."""


@dataclass(frozen=True)
class CameraInfo:
    """A capture device found on this machine.

    Attributes:
        index: the OpenCV index to open it with.
        path: its device node (``/dev/videoN`` on Linux), if known.
        name: the name the driver reports, if known.
    """

    index: int
    path: str | None = None
    name: str = ""

    def __str__(self) -> str:
        """``0: HD Webcam (/dev/video0)``."""
        label = self.name or "camera"
        return f"{self.index}: {label}" + (f" ({self.path})" if self.path else "")


class CameraList(list):
    """A list of :class:`CameraInfo` with a ``message`` saying why it is empty, if it is."""

    def __init__(self, cameras: list[CameraInfo], message: str = "") -> None:
        super().__init__(cameras)
        self.message = message if not cameras else ""


def _linux_cameras(dev_glob: str, sys_root: str) -> list[CameraInfo]:
    cameras = []
    for path in sorted(glob.glob(dev_glob), key=lambda p: int(re.sub(r"\D", "", p) or 0)):
        node = os.path.basename(path)
        sysdir = Path(sys_root) / node
        # UVC webcams expose a second node per camera for metadata (index 1); it yields no
        # frames, so only index-0 nodes are cameras.
        try:
            if (sysdir / "index").read_text().strip() not in ("0", ""):
                continue
        except OSError:
            pass
        try:
            name = (sysdir / "name").read_text().strip()
        except OSError:
            name = ""
        number = re.sub(r"\D", "", node)
        cameras.append(CameraInfo(int(number) if number else len(cameras), path, name))
    return cameras


def list_cameras(
    max_probe: int = 8,
    *,
    dev_glob: str = "/dev/video*",
    sys_root: str = "/sys/class/video4linux",
) -> CameraList:
    """The capture devices on this machine.

    On Linux the device nodes are listed without opening them (opening a busy camera can
    take seconds); elsewhere indices ``0..max_probe-1`` are tried with OpenCV.

    Args:
        max_probe: indices to try where devices cannot be listed.
        dev_glob: device nodes to look for (Linux).
        sys_root: where the kernel describes them (Linux).

    Returns:
        A :class:`CameraList`; when it is empty its ``message`` says so clearly, and the
        message is logged.
    """
    if sys.platform.startswith("linux"):
        cameras = _linux_cameras(dev_glob, sys_root)
    else:
        cameras = []
        for index in range(max_probe):
            capture = cv2.VideoCapture(index)
            try:
                if capture.isOpened():
                    cameras.append(CameraInfo(index, None, capture.getBackendName()))
            finally:
                capture.release()
    result = CameraList(cameras, NO_CAMERAS_MESSAGE)
    if not result:
        log.info(result.message)
    return result


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip("\x00") else ""


class CameraSource:
    """Frames from a webcam (or any source OpenCV's VideoCapture opens), as RGB.

    The requested resolution, frame rate and MJPG are asked for; what the device agreed to
    is read back into ``width``, ``height``, ``fps`` and ``fourcc``, and the frame rate
    really achieved is measured over the last frames (``measured_fps``). MJPG is what lets
    most USB webcams deliver 720p and up at 30 fps; devices that do not offer it keep their
    default format.

    Args:
        device: camera index, device path (``/dev/video0``) or a video file path.
        width: requested frame width (``None``: the device default).
        height: requested frame height.
        fps: requested frame rate.
        mjpg: ask for MJPG compression.
        fps_window: frames the measured rate is averaged over.

    Raises:
        CameraError: the device cannot be opened (absent, busy or no permission).
    """

    def __init__(
        self,
        device: int | str | os.PathLike = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        mjpg: bool = True,
        fps_window: int = 30,
    ) -> None:
        self.device = os.fspath(device) if isinstance(device, os.PathLike) else device
        self.is_file = isinstance(self.device, str) and os.path.isfile(self.device)
        if (
            isinstance(self.device, str)
            and not self.is_file
            and not self.device.startswith("/dev/")
        ):
            if self.device.isdigit():
                self.device = int(self.device)
            elif not os.path.exists(self.device):
                raise CameraError(f"{self.device}: no such camera or file")
        self._capture = cv2.VideoCapture(self.device)
        if not self._capture.isOpened():
            self._capture.release()
            raise CameraError(
                f"camera {self.device!r} could not be opened: it is not present, busy in "
                "another program, or this user may not use it"
            )
        if not self.is_file:
            self._negotiate(width, height, fps, mjpg)
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        reported = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps: float | None = reported if reported > 0 else None
        self.fourcc = _fourcc_text(self._capture.get(cv2.CAP_PROP_FOURCC))
        self.backend_name = self._capture.getBackendName()
        self.frames_read = 0
        self._arrivals: collections.deque[float] = collections.deque(maxlen=max(2, fps_window))
        self._t0: float | None = None
        self._closed = False

    def _negotiate(
        self, width: int | None, height: int | None, fps: float | None, mjpg: bool
    ) -> None:
        cap = self._capture
        # FOURCC first: on V4L2 the resolutions and rates offered depend on the format.
        if mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        # One frame in the driver queue keeps latency low; not every backend honours it.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def describe(self) -> str:
        """One line: what was negotiated and what is measured."""
        fmt = f" {self.fourcc}" if self.fourcc else ""
        nominal = f"{self.fps:.1f} fps" if self.fps else "fps unknown"
        measured = self.measured_fps
        got = f", measured {measured:.1f} fps" if measured else ""
        return f"camera {self.device!r}: {self.width}x{self.height}{fmt}, {nominal}{got}"

    @property
    def measured_fps(self) -> float | None:
        """Frames per second over the last ``fps_window`` reads (``None`` before two)."""
        if len(self._arrivals) < 2:
            return None
        span = self._arrivals[-1] - self._arrivals[0]
        return (len(self._arrivals) - 1) / span if span > 0 else None

    def read(self) -> TimedFrame | None:
        """The next frame (blocks until the device delivers one).

        Returns:
            The frame, or ``None`` at the end of a video file.

        Raises:
            CameraError: a camera stopped delivering frames (unplugged, taken by another
                program).
        """
        if self._closed:
            return None
        ok, bgr = self._capture.read()
        now = time.monotonic()
        if not ok or bgr is None:
            if self.is_file:
                return None
            raise CameraError(
                f"camera {self.device!r} stopped delivering frames (unplugged or in use?)"
            )
        self._arrivals.append(now)
        if self._t0 is None:
            self._t0 = now
        if self.is_file:
            seconds = float(self._capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        else:
            seconds = now - self._t0
        if bgr.ndim == 2:  # some devices deliver grey
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (self.height, self.width):
            # The driver may switch size after negotiation; what arrives is what counts.
            self.height, self.width = rgb.shape[:2]
        index = self.frames_read
        self.frames_read += 1
        # Timestamps in microseconds: exact enough for live video, and integral for sinks.
        pts = round(seconds * 1_000_000)
        return TimedFrame(np.ascontiguousarray(rgb), index, pts, Fraction(1, 1_000_000), seconds)

    def __iter__(self) -> Iterator[TimedFrame]:
        """Iterate frames until a file ends (a camera runs until closed or an error)."""
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        """Release the device; idempotent."""
        if not self._closed:
            self._closed = True
            self._capture.release()

    def __enter__(self) -> CameraSource:
        """Use in a ``with`` block that releases the device."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the device."""
        self.close()
