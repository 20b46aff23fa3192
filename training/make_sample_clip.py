"""Make the app's sample clip: a short real video with camera-shake blur from our synthesiser.

``resources/sample.mp4`` is what a first-time user sees when the app starts: real footage
(``vtest.mp4`` from opencv-doc, see ``resources/README.md``) made blurry the way a shaking
hand-held camera blurs it, with :func:`training.data.synthetic.blur_video` — one smooth random
camera path through the whole clip, each frame averaged in linear light over the poses its
shutter was open for, so the blur's length and direction drift from frame to frame.

The frames are shrunk (area averaging) to the output size before blurring, so the only blur
in the clip is the synthesised one, and written with the engine's H.264 sink at the source's
timestamps. Run ``python -m training.make_sample_clip`` to rebuild the file; the defaults
reproduce the shipped one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from engine.resources import RESOURCES_DIR
from engine.video import FileSource, VideoSink
from training.data.synthetic import blur_video

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "vtest.mp4"
DEFAULT_OUTPUT = RESOURCES_DIR / "sample.mp4"
MAX_BYTES = 5 * 1024 * 1024


def _frames(
    source: FileSource, start: float, seconds: float, size: tuple[int, int]
) -> Iterator[tuple[np.ndarray, int]]:
    """``(frame, pts)`` of the chosen stretch, shrunk to ``size`` (width, height)."""
    first = None
    for timed in source:
        if timed.time < start - 1e-6:
            continue
        if first is None:
            first = timed.time
        if timed.time - first >= seconds - 1e-6:
            break
        image = timed.image
        if (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        yield np.ascontiguousarray(image), timed.pts


def make_sample_clip(
    source: str | os.PathLike = DEFAULT_SOURCE,
    output: str | os.PathLike = DEFAULT_OUTPUT,
    *,
    start: float = 0.0,
    seconds: float = 9.0,
    size: tuple[int, int] = (640, 480),
    max_extent_px: float = 16.0,
    seed: int = 7,
    crf: int = 20,
    overwrite: bool = True,
) -> Path:
    """Write a camera-shaken excerpt of ``source`` to ``output``.

    Args:
        source: a real video (the default is the shared vtest.mp4).
        output: the H.264 MP4 to write.
        start: where the excerpt starts, in seconds.
        seconds: how long it is.
        size: ``(width, height)`` of the output (area-averaged from the source).
        max_extent_px: the longest blur, in output pixels (see ``blur_video``).
        seed: seed of the camera path.
        crf: H.264 quality (lower: better and larger).
        overwrite: replace an existing output.

    Returns:
        The path written.
    """
    src = FileSource(source)
    try:
        fps = src.fps or 25.0
        picked = list(_frames(src, start, seconds, size))
        if not picked:
            raise ValueError(f"{source}: no frames between {start} s and {start + seconds} s")
        images = [image for image, _ in picked]
        first_pts = picked[0][1] or 0
        blurred = blur_video(images, seed=seed, max_extent_px=max_extent_px, fps=fps)
        with VideoSink(
            output,
            size[0],
            size[1],
            codec="h264",
            crf=crf,
            preset="slow",
            time_base=src.time_base,
            frame_rate=src.info.frame_rate,
            color=src.color,
            overwrite=overwrite,
        ) as sink:
            for (_, pts), frame in zip(picked, blurred, strict=True):
                sink.write(frame, None if pts is None else pts - first_pts)
    finally:
        src.close()
    return Path(output)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from None
    return w, h


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.make_sample_clip [--source CLIP] [-o OUT] …``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.make_sample_clip",
        description="Write the app's sample clip: real video with synthetic camera shake.",
    )
    parser.add_argument("--source", default=os.fspath(DEFAULT_SOURCE), help="real video")
    parser.add_argument("-o", "--output", default=os.fspath(DEFAULT_OUTPUT), help="MP4 to write")
    parser.add_argument("--start", type=float, default=0.0, help="start, in seconds")
    parser.add_argument("--seconds", type=float, default=9.0, help="length, in seconds")
    parser.add_argument("--size", type=_size, default=(640, 480), help="WxH of the output")
    parser.add_argument("--max-extent", type=float, default=16.0, help="longest blur, pixels")
    parser.add_argument("--seed", type=int, default=7, help="seed of the camera path")
    parser.add_argument("--crf", type=int, default=20, help="H.264 quality")
    args = parser.parse_args(argv)
    path = make_sample_clip(
        args.source,
        args.output,
        start=args.start,
        seconds=args.seconds,
        size=args.size,
        max_extent_px=args.max_extent,
        seed=args.seed,
        crf=args.crf,
    )
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB)")
    if size > MAX_BYTES:
        print(f"warning: larger than {MAX_BYTES / 1e6:.1f} MB; raise --crf", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
