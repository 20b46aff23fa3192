import numpy as np
import pytest

from training.data import FrameAverageDataset, average_frames
from training.data.paired import write_rgb


def test_frames_are_averaged_in_linear_light_with_the_middle_frame_as_target():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    ((blur, sharp),) = list(average_frames([black, white, black], 3))
    # Light averages to 1/3; sRGB-encoded that is 156, not the 85 a gamma-space mean gives.
    assert np.all(blur == 156) and np.array_equal(sharp, white)


def test_windows_follow_the_stride():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(10)]
    assert [int(s[0, 0, 0]) for _, s in average_frames(frames, 3)] == [1, 4, 7]
    assert [int(s[0, 0, 0]) for _, s in average_frames(frames, 3, stride=1)] == list(range(1, 9))
    assert [int(s[0, 0, 0]) for _, s in average_frames(frames, 3, stride=5)] == [1, 6]
    with pytest.raises(ValueError, match="odd"):
        list(average_frames(frames, 4))


def test_dataset_over_frame_folders_and_video_files(tmp_path):
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    clip = tmp_path / "clip_a"
    clip.mkdir()
    for i in range(11):
        write_rgb(clip / f"{i:04d}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    with av.open(str(tmp_path / "clip_b.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for _ in range(7):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (32, 48, 3), dtype=np.uint8), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (tmp_path / "readme.txt").write_text("ignored")

    ds = FrameAverageDataset(tmp_path, n_frames=(3, 5), crop=24, seed=0, stride=3)
    # clip_a: windows of 5 starting at 0, 3, 6; clip_b: 0 only (7 frames).
    assert ds.windows == [(0, 0), (0, 3), (0, 6), (1, 0)]
    for i in range(len(ds)):
        item = ds[i]
        assert tuple(item["blur"].shape) == (3, 24, 24) == tuple(item["sharp"].shape)
    a, b = ds.sample(1), FrameAverageDataset(tmp_path, (3, 5), 24, 0, stride=3).sample(1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(Exception, match="no clip with"):
        FrameAverageDataset(tmp_path, n_frames=13)
