"""Video I/O: frame sources (files, cameras, image folders) and sinks (encoders, image files).

Everything here follows the engine's frame contract: ``uint8`` RGB ``(H, W, 3)``,
C-contiguous, converted once at the source. The package imports neither torch nor Qt.
"""

from engine.video.camera import CameraError, CameraInfo, CameraSource, list_cameras
from engine.video.sink import (
    SINK_CODECS,
    ImageSequenceSink,
    SinkError,
    VideoSink,
    codec_available,
    write_image,
)
from engine.video.sources import (
    IMAGE_SUFFIXES,
    ColorInfo,
    FileSource,
    FrameSource,
    ImageFolderSource,
    MediaInfo,
    SourceError,
    TimedFrame,
    VideoError,
    probe,
    read_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "SINK_CODECS",
    "CameraError",
    "CameraInfo",
    "CameraSource",
    "ColorInfo",
    "FileSource",
    "FrameSource",
    "ImageFolderSource",
    "ImageSequenceSink",
    "MediaInfo",
    "SinkError",
    "SourceError",
    "TimedFrame",
    "VideoError",
    "VideoSink",
    "codec_available",
    "list_cameras",
    "probe",
    "read_image",
    "write_image",
]
