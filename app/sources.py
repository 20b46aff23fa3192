"""Opening what the user points the app at: a video file, an image, a folder of images, a camera.

Sources come from :mod:`engine.video`; this module only decides which one a path needs and
describes it for the window (its kind decides the pipeline's policy: cameras are live and drop
frames, everything else is played back without dropping any).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine.process import MEDIA_SUFFIXES
from engine.video import (
    IMAGE_SUFFIXES,
    CameraSource,
    FileSource,
    FrameSource,
    ImageFolderSource,
    SourceError,
    TimedFrame,
    read_image,
)

FILE, IMAGES, IMAGE, CAMERA = "file", "images", "image", "camera"
#: Frame rate a folder of images is played at.
IMAGE_FOLDER_FPS = 10.0
#: What the app asks a webcam for; the device may agree to less (see CameraSource).
CAMERA_REQUEST = {"width": 1280, "height": 720, "fps": 30.0}


class StillImageSource:
    """One image as a one-frame source (shown until another source is opened).

    Args:
        path: the image file.

    Raises:
        SourceError: the image cannot be read.
    """

    fps: float | None = None

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._image = read_image(self.path)
        self.height, self.width = self._image.shape[:2]
        self._done = False

    def read(self) -> TimedFrame | None:
        """The image once, then ``None``."""
        if self._done:
            return None
        self._done = True
        return TimedFrame(self._image, 0, 0, Fraction(1, 1), 0.0)

    def __iter__(self) -> Iterator[TimedFrame]:
        """The image, once."""
        while (frame := self.read()) is not None:
            yield frame

    def seek(self, seconds: float) -> None:
        """Deliver the image again on the next read."""
        del seconds
        self._done = False

    def close(self) -> None:
        """Nothing to release."""
        self._done = True


@dataclass
class OpenedSource:
    """A source ready to play and what the window needs to know about it.

    Attributes:
        source: the frame source (owned by the capture thread once started).
        kind: ``file``, ``images``, ``image`` or ``camera``.
        label: short name for the title bar and status line.
        spec: how to open it again (stored in the settings): ``file:PATH`` or ``camera:DEV``.
        duration: seconds of media, for the seek bar (``None`` for live sources and stills).
    """

    source: FrameSource
    kind: str
    label: str
    spec: str
    duration: float | None = None

    @property
    def live(self) -> bool:
        """Whether frames arrive in real time (and are dropped when the pipeline is busy)."""
        return self.kind == CAMERA

    @property
    def seekable(self) -> bool:
        """Whether it has a timeline (play, pause, step, seek)."""
        return self.kind in (FILE, IMAGES)


def is_media_path(path: str | os.PathLike) -> bool:
    """Whether a dropped or chosen path is something the app can open (media file or folder)."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in MEDIA_SUFFIXES


def open_path(path: str | os.PathLike) -> OpenedSource:
    """Open a video file, an image or a folder of images.

    Raises:
        SourceError: the path cannot be read as any of them (the message names it and why).
    """
    p = Path(path)
    if p.is_dir():
        folder = ImageFolderSource(p, fps=IMAGE_FOLDER_FPS)
        return OpenedSource(folder, IMAGES, p.name, f"file:{p}", len(folder) / IMAGE_FOLDER_FPS)
    if not p.exists():
        raise SourceError(f"{p}: file not found")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return OpenedSource(StillImageSource(p), IMAGE, p.name, f"file:{p}")
    source = FileSource(p, queue_size=4)
    duration = source.info.duration
    if duration is None and source.info.frames and source.fps:
        duration = source.info.frames / source.fps
    return OpenedSource(source, FILE, p.name, f"file:{p}", duration)


def open_camera(device: int | str | os.PathLike) -> OpenedSource:
    """Open a webcam (index or device path) — or, for tests, a video file through OpenCV.

    Raises:
        CameraError: the device is absent, busy or not permitted.
    """
    spec = os.fspath(device) if isinstance(device, os.PathLike) else device
    camera = CameraSource(spec, **CAMERA_REQUEST)
    label = f"camera {spec}" if isinstance(spec, int) or str(spec).startswith("/dev/") else spec
    return OpenedSource(camera, CAMERA, str(label), f"camera:{spec}")


def parse_spec(spec: str) -> tuple[str, str] | None:
    """``("file", PATH)`` or ``("camera", DEVICE)`` from a stored source spec, else ``None``."""
    kind, sep, value = spec.partition(":")
    if not sep or not value or kind not in ("file", "camera"):
        return None
    return kind, value
