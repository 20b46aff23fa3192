import numpy as np
import pytest

from engine.metrics import psnr
from engine.video import CameraError, CameraSource, list_cameras
from engine.video.camera import NO_CAMERAS_MESSAGE, CameraList
from tests.engine.video.clips import make_clip


def test_camera_source_on_a_file_gives_rgb_frames_and_rates(tmp_path):
    path = tmp_path / "c.mp4"
    made = make_clip(path, frames=8, fps=10, pix_fmt="yuv444p")
    with CameraSource(path) as cam:
        assert (cam.width, cam.height, cam.fps) == (64, 48, 10.0)
        frames = list(cam)
        assert cam.read() is None  # a file ends; a camera would raise instead
        assert cam.measured_fps is not None and cam.measured_fps > 0
        assert "64x48" in cam.describe() and "measured" in cam.describe()
    assert len(frames) == 8 and [f.index for f in frames] == list(range(8))
    assert [round(f.time, 3) for f in frames] == [i / 10 for i in range(8)]
    for f, original in zip(frames, made, strict=True):
        assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous
        assert f.image.shape == (48, 64, 3)
        assert psnr(f.image, original) > 30  # BGR→RGB happened (a swap would fail this)
        assert f.pts == round(f.time * 1_000_000)


def test_a_missing_camera_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="no such camera or file"):
        CameraSource(tmp_path / "nope.mp4")
    with pytest.raises(CameraError, match="could not be opened"):
        CameraSource("/dev/video97")
    with pytest.raises(CameraError, match="could not be opened"):
        CameraSource(97)


def test_no_cameras_gives_an_empty_list_with_a_message(tmp_path):
    cameras = list_cameras(dev_glob=str(tmp_path / "video*"), sys_root=str(tmp_path / "sys"))
    assert cameras == [] and isinstance(cameras, CameraList)
    assert cameras.message == NO_CAMERAS_MESSAGE and "no cameras found" in cameras.message


def test_cameras_are_listed_from_device_nodes(tmp_path):
    sys_root = tmp_path / "sys"
    for n, (index, name) in enumerate([("0", "HD Webcam"), ("1", "HD Webcam"), ("0", "IR")]):
        (tmp_path / f"video{n * 2}").touch()
        node = sys_root / f"video{n * 2}"
        node.mkdir(parents=True)
        (node / "index").write_text(index + "\n")
        (node / "name").write_text(name + "\n")
    cameras = list_cameras(dev_glob=str(tmp_path / "video*"), sys_root=str(sys_root))
    # video2 is the metadata node of the first webcam (index 1): not a camera.
    assert [(c.index, c.name) for c in cameras] == [(0, "HD Webcam"), (4, "IR")]
    assert cameras.message == ""
    assert str(cameras[0]) == f"0: HD Webcam ({tmp_path / 'video0'})"
