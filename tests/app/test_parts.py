"""The app's Qt-free parts: the latest-frame slot, recording timestamps, statistics, sources."""

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from app.frame_slot import LatestSlot
from app.recording import SIDE_BY_SIDE, Recorder, RecordRequest
from app.shortcuts import HOLD_ORIGINAL, SHORTCUTS
from app.sources import CAMERA, FILE, IMAGE, IMAGES, open_camera, open_path, parse_spec
from app.stats import DisplaySample, PipelineStats, percentile
from engine.backends.identity import IdentityBackend
from engine.video import FileSource, SourceError, TimedFrame, write_image
from tests.app.conftest import pattern_frame


def test_live_slot_keeps_only_the_newest_and_counts_drops():
    slot = LatestSlot(drop_oldest=True)
    assert slot.put(1) is True  # empty → full: the consumer must be told
    assert slot.put(2) is False and slot.put(3) is False
    assert slot.dropped == 2
    assert slot.take() == 3 and slot.take() is None


def test_file_slot_waits_for_the_consumer_and_never_drops():
    slot = LatestSlot(drop_oldest=False)
    got = []

    def consumer():
        for _ in range(50):
            time.sleep(0.001)
            item = slot.take()
            if item is not None:
                got.append(item)
            if len(got) == 20:
                return

    thread = threading.Thread(target=consumer)
    thread.start()
    for i in range(20):
        slot.put(i)
        while slot.full and thread.is_alive():
            time.sleep(0.001)
    thread.join()
    assert got == list(range(20)) and slot.dropped == 0


def test_a_waiting_producer_is_released_by_close_or_interruption():
    slot = LatestSlot(drop_oldest=False)
    slot.put("a")
    flag = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("put", slot.put("b", flag.is_set)))
    thread.start()
    time.sleep(0.1)
    assert thread.is_alive()  # waiting: files never drop
    flag.set()
    thread.join(2)
    assert result["put"] is False and slot.take() == "a"
    slot.put("c")
    thread = threading.Thread(target=lambda: result.setdefault("closed", slot.put("d")))
    thread.start()
    slot.close()
    thread.join(2)
    assert result["closed"] is False and not thread.is_alive()


def _timed(i, pts, time_base=Fraction(1, 10)):
    return TimedFrame(pattern_frame(i, 32, 48), i, pts, time_base, float(pts * time_base))


def test_recorder_keeps_timestamps_moving_forward_across_a_loop(tmp_path):
    path = tmp_path / "rec.mp4"
    rec = Recorder(RecordRequest(path, SIDE_BY_SIDE, preset="ultrafast"))
    # A file that loops after 3 frames: pts 5, 6, 7, then 5, 6 again.
    for i, pts in enumerate([5, 6, 7, 5, 6]):
        frame = _timed(i, pts)
        rec.write(frame, 255 - frame.image, fps=10)
    result = rec.close()
    assert result.error is None and result.path == path and result.frames == 5
    with FileSource(path) as src:
        frames = list(src)
    assert (src.width, src.height) == (96, 32)  # side by side: twice the width
    assert [round(f.time, 3) for f in frames] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert np.abs(frames[1].image[:, :48].astype(int) - _timed(1, 6).image).mean() < 12


def test_recorder_without_frames_leaves_no_file(tmp_path):
    rec = Recorder(RecordRequest(tmp_path / "none.mp4"))
    result = rec.close()
    assert result.path is None and result.error and not list(tmp_path.iterdir())


def _sample(t, captured, processed, dropped=0, wrap=0.2, paint=1.0):
    return DisplaySample(t, t + 0.01, t + 0.02, t + 0.021, t + 0.03, wrap, paint, captured,
                         processed, dropped)  # fmt: skip


def test_stats_rates_latency_and_display_time():
    stats = PipelineStats(window_s=10.0, warmup_frames=2)
    for i in range(11):
        stats.add(_sample(i * 0.1, captured=2 * i, processed=i, dropped=i))
    snap = stats.snapshot()
    assert snap.capture_fps == pytest.approx(20.0) and snap.inference_fps == pytest.approx(10.0)
    assert snap.display_fps == pytest.approx(10.0)
    assert snap.latency_ms == pytest.approx(30.0) and snap.display_ms == pytest.approx(1.2)
    assert snap.inference_ms == pytest.approx(10.0) and snap.dropped == 10
    report = stats.report()
    assert report["frames"] == 9 and report["display_ms_median"] == pytest.approx(1.2)
    assert report["dropped"] == 8
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_identity_backend_passes_frames_through_a_reused_buffer():
    backend = IdentityBackend()
    frames = np.stack([pattern_frame(0, 16, 24), pattern_frame(1, 16, 24)])
    out = backend.infer(frames)
    assert np.array_equal(out, frames) and out is not frames
    assert backend.infer(frames) is out  # same shape: same buffer
    with pytest.raises(ValueError):
        backend.infer(frames.astype(np.float32))


def test_shortcut_keys_are_unique():
    keys = [k for s in SHORTCUTS for k in s.keys]
    assert len(keys) == len(set(keys))
    # Space is held (the window watches it), not an action's trigger.
    assert [s.action for s in SHORTCUTS if "Space" in s.keys] == [HOLD_ORIGINAL.action]


def test_paths_open_as_the_right_kind_of_source(tmp_path, small_clip, broken_file):
    image = tmp_path / "still.png"
    write_image(image, pattern_frame(0))
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"f{i}.png", pattern_frame(i))
    expected = {small_clip: FILE, image: IMAGE, folder: IMAGES}
    for path, kind in expected.items():
        opened = open_path(path)
        try:
            assert opened.kind == kind and opened.spec == f"file:{path}"
            assert opened.source.read().image.shape == (96, 128, 3)
        finally:
            opened.source.close()
    assert open_path(folder).duration == pytest.approx(0.3)
    with pytest.raises(SourceError, match=r"broken\.mp4"):
        open_path(broken_file)
    with pytest.raises(SourceError, match="not found"):
        open_path(tmp_path / "missing.mp4")
    camera = open_camera(small_clip)  # the camera code, through OpenCV, on a file
    try:
        assert camera.kind == CAMERA and camera.live and not camera.seekable
    finally:
        camera.source.close()
    assert parse_spec("camera:0") == ("camera", "0") and parse_spec("nonsense") is None
