"""The main window, offscreen: frames arrive and are painted, every view mode, the divider,
zoom, recording, settings, errors, cameras."""

import time
from fractions import Fraction

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.comparison_view import ViewMode
from app.main_window import SAMPLE_CLIP, passthrough_selection
from app.sources import CAMERA, OpenedSource
from app.workers import LoadRequest
from engine.backends.identity import IdentityBackend
from engine.backends.select import Selection
from engine.backends.streams import StreamedBackend, auto_streams
from engine.video import CameraError, FileSource, TimedFrame, list_cameras
from engine.video.camera import NO_CAMERAS_MESSAGE
from tests.app.conftest import MODEL, crop, grab, wait_model


def _with_model(pair):
    return pair.model == MODEL


@pytest.mark.skipif(not SAMPLE_CLIP.is_file(), reason="resources/sample.mp4 not built")
def test_sample_clip_frames_arrive_and_both_panes_differ(qtbot, make_window):
    window = make_window()
    wait_model(qtbot, window)
    window.set_view_mode(ViewMode.SIDE_BY_SIDE)
    assert window.open_sample()
    first = window.pairs.wait(qtbot, _with_model)
    later = window.pairs.wait(qtbot, lambda p: _with_model(p) and p.captured.serial > 2)
    assert later.captured.media_time > first.captured.media_time  # it plays
    assert first.original.shape == (480, 640, 3)
    assert np.abs(later.original.astype(int) - later.result).mean() > 1.0
    painted = grab(window.view)
    left, right = (crop(painted, window.view.image_rect(p)) for p in window.view.pane_rects())
    # Below the labels: pure frame content.
    left, right = left[40:], right[40:]
    for pane in (left, right):
        assert pane.size and pane.std() > 10  # an image, not an empty background
    assert np.abs(left.astype(int) - right).mean() > 1.0
    window.view.set_show_original(True)  # Space: the original in both panes
    painted = grab(window.view)
    left, right = (crop(painted, window.view.image_rect(p))[40:] for p in window.view.pane_rects())
    assert np.array_equal(left, right)


def test_every_view_mode_paints_something_else(qtbot, make_window, small_clip):
    window = make_window()
    wait_model(qtbot, window)
    assert window.open_path(small_clip, playing=False)
    window.pairs.wait(qtbot, _with_model)
    pictures = {}
    for mode in ViewMode:
        window.set_view_mode(mode)
        if mode == ViewMode.HEATMAP:
            window.pairs.wait(qtbot, lambda p: p.heatmap is not None)
        qtbot.wait(50)
        pictures[mode] = grab(window.view)
    modes = list(ViewMode)
    for i, a in enumerate(modes):
        for b in modes[i + 1 :]:
            assert np.abs(pictures[a].astype(int) - pictures[b]).mean() > 0.5, (a, b)
    heat = window.current_pair.heatmap
    assert heat is not None and heat.shape == window.current_pair.original.shape
    # Holding Space (a real key press on the view) shows the original instead of the result.
    window.set_view_mode(ViewMode.TOGGLE)
    qtbot.wait(50)
    result_shown = grab(window.view)
    qtbot.keyPress(window.view, Qt.Key.Key_Space)
    assert window.view.showing_original()
    original_shown = grab(window.view)
    qtbot.keyRelease(window.view, Qt.Key.Key_Space)
    assert not window.view.showing_original()
    assert np.abs(result_shown.astype(int) - original_shown).mean() > 0.5


def test_playback_steps_seeks_and_pauses(qtbot, make_window, small_clip):
    window = make_window(passthrough=True)
    window.open_path(small_clip, playing=False)
    assert window.playback.isVisible()
    window.pairs.wait(qtbot, lambda p: p.captured.frame.index == 0)

    def shown(index):
        window.pairs.wait(
            qtbot, lambda p: p.captured.frame.index == index and p is window.pairs[-1]
        )

    for index in (1, 2, 3):
        window.step(1)
        shown(index)
    window.step(-1)
    shown(2)
    window.seek(0.8)
    shown(8)
    assert window.playback.seek_slider.value() == 800
    assert window.playback.time_label.text().startswith("0:00.8")
    before = len(window.pairs)
    window.toggle_play()
    # Playing on from 0.8 s reaches the last frame (11); the clip loops after it, so the test
    # only asks that it was painted, not that it is still the latest.
    qtbot.waitUntil(lambda: 11 in [p.captured.frame.index for p in window.pairs[before:]])
    window.toggle_play()
    assert not window._capture.playing


def test_a_looping_clip_shows_its_last_frame_before_starting_again(qtbot, make_window, small_clip):
    window = make_window(passthrough=True)
    assert window.loop_action.isChecked()
    window.open_path(small_clip, playing=True)

    def shown():
        return [p.captured.frame.index for p in window.pairs]

    qtbot.waitUntil(lambda: shown().count(0) >= 2, timeout=30000)
    indices = shown()
    start = indices.index(0)
    lap = indices[start : indices.index(0, start + 1)]
    assert lap == sorted(lap) and lap[0] == 0 and lap[-1] == 11


def test_dragging_the_divider_moves_it(qtbot, make_window, small_clip):
    window = make_window()
    window.set_view_mode(ViewMode.SPLIT)
    window.open_path(small_clip, playing=False)
    window.pairs.wait(qtbot)
    view = window.view
    view.set_split(0.5)
    qtbot.wait(20)
    before = grab(view)
    y = round(view.height() / 2) + 40
    start = QPoint(round(view.divider_x()), y)
    target = QPoint(round(view.width() * 0.25), y)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, QPoint(round(view.width() * 0.4), y))
    qtbot.mouseMove(view, target)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=target)
    assert view.split() == pytest.approx(0.25, abs=0.01)
    assert abs(view.divider_x() - target.x()) <= 2
    after = grab(view)
    # The strip between the old and the new divider changed: original before, result now.
    strip = slice(target.x() + 20, start.x() - 20)
    rows = slice(y - 60, y - 20)
    assert np.abs(before[rows, strip].astype(int) - after[rows, strip]).mean() > 1.0
    # A drag elsewhere pans instead.
    view.actual_size()
    center = view.center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(view.width() - 60, y))
    qtbot.mouseMove(view, QPoint(view.width() - 90, y - 10))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(view.width() - 90, y - 10))
    assert view.split() == pytest.approx(0.25, abs=0.01)
    assert view.center().x() == pytest.approx(center.x() + 30, abs=1.5)


def test_zoom_and_pan_are_shared_by_both_panes(qtbot, make_window, small_clip):
    window = make_window(passthrough=True)  # result == original: the panes must match
    window.set_view_mode(ViewMode.SIDE_BY_SIDE)
    window.open_path(small_clip, playing=False)
    wait_model(qtbot, window, "pass-through")
    window.pairs.wait(qtbot, lambda p: p.model == "pass-through")
    view = window.view
    left, right = view.pane_rects()
    cursor = QPointF(left.center().x() + 30, left.center().y() + 20)
    under = view.map_to_image(cursor)
    view.zoom_by(2.5, cursor)  # what one wheel turn about the cursor does
    assert view.map_to_image(cursor).x() == pytest.approx(under.x(), abs=0.01)
    view.pan_by(-25, 10)
    qtbot.wait(100)  # let the worker redo the frame at the new scale
    painted = grab(view)
    left, right = view.pane_rects()  # (the layout may have settled meanwhile)
    a = crop(painted, left.adjusted(0, 50, 0, 0))
    b = crop(painted, right.adjusted(0, 50, 0, 0))
    w = min(a.shape[1], b.shape[1])
    assert a.std() > 10 and np.abs(a[:, :w].astype(int) - b[:, :w]).mean() < 1.0
    view.fit()
    assert view.is_fit() and view.scale() == pytest.approx(view.fit_scale())
    view.actual_size()
    assert view.scale() == 1.0


@pytest.mark.parametrize("mode", ["deblurred", "side_by_side"])
def test_recording_writes_every_frame_of_the_clip(qtbot, make_window, small_clip, tmp_path, mode):
    window = make_window()
    wait_model(qtbot, window)
    window.loop_action.setChecked(False)
    window.panel.record_mode_combo.setCurrentIndex(window.panel.record_mode_combo.findData(mode))
    assert window.open_path(small_clip, playing=False)
    window.pairs.wait(qtbot, _with_model)
    path = window.start_recording(tmp_path / f"{mode}.mp4")
    window.seek(0.0)
    window.set_playing(True)
    window.pairs.wait(qtbot, lambda p: p.captured.frame.index == 11 and not p.refresh)
    with qtbot.waitSignal(window.recording_finished, timeout=20000) as finished:
        window.stop_recording()
    result = finished.args[0]
    assert result.error is None and result.path == path and result.frames == 12
    with FileSource(path) as src:
        frames = list(src)
    assert len(frames) == 12
    assert src.width == (256 if mode == "side_by_side" else 128) and src.height == 96
    assert [round(f.time, 2) for f in frames] == [i / 10 for i in range(12)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_closing_the_window_stops_the_threads_and_finishes_the_recording(
    qtbot, make_window, small_clip, tmp_path
):
    window = make_window(passthrough=True)
    window.open_path(small_clip)
    window.pairs.wait(qtbot)
    (tmp_path / "out").mkdir()
    path = window.start_recording(tmp_path / "out" / "rec.mp4")
    count = len(window.pairs)
    qtbot.waitUntil(lambda: len(window.pairs) > count + 3, timeout=10000)
    capture = window._capture
    window.close()
    assert not window._worker_thread.isRunning() and window._capture is None
    assert capture.isFinished()
    with FileSource(path) as src:
        assert sum(1 for _ in src) >= 3
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["rec.mp4"]  # no temporary left


def test_snapshot_writes_the_pair(qtbot, make_window, small_clip, tmp_path):
    window = make_window()
    window.set_output_folder(tmp_path / "out")
    window.open_path(small_clip, playing=False)
    pair = window.pairs.wait(qtbot)
    with qtbot.waitSignal(window.snapshot_saved, timeout=10000) as saved:
        window.snapshot()
    paths = saved.args[0]
    endings = ("_original.png", "_deblurred.png", "_side_by_side.png")
    assert all(p.name.endswith(e) for p, e in zip(paths, endings, strict=True))
    from engine.video import read_image

    assert np.array_equal(read_image(paths[0]), pair.original)
    assert read_image(paths[2]).shape == (96, 256, 3)


def test_settings_survive_a_restart(qtbot, make_window, small_clip, settings_path, tmp_path):
    window = make_window()
    wait_model(qtbot, window)
    window.set_view_mode(ViewMode.HEATMAP)
    combo = window.panel.backend_combo
    combo.setCurrentIndex(combo.findData("onnxruntime-cpu"))
    window.panel.intensity_slider.setValue(40)
    window.set_output_folder(tmp_path / "exports")
    window.open_path(small_clip, playing=False)
    window.move(20, 10)
    window.resize(760, 520)  # within the offscreen screen, which restoring clamps to
    qtbot.waitUntil(lambda: window.width() == 760)
    size = window.size()
    window.view.set_split(0.3)
    window.close()

    again = make_window(size=None)
    assert again.view.mode() == ViewMode.HEATMAP
    assert again.panel.backend_combo.currentData() == "onnxruntime-cpu"
    assert again.panel.intensity_slider.value() == 40
    assert again.settings.output_folder == tmp_path / "exports"
    assert again.settings.last_source == f"file:{small_clip}"
    assert again.view.split() == pytest.approx(0.3)
    assert again.panel.model_list.currentItem().text() == MODEL
    assert again.size() == size
    assert settings_path.is_file() and "heatmap" in settings_path.read_text()
    assert again.reopen_last_source()
    again.pairs.wait(qtbot)


class _FailingCamera:
    """A camera that delivers a few frames and is then unplugged."""

    fps = 30.0
    width, height = 64, 48

    def __init__(self, frames: int = 3) -> None:
        self.left = frames

    def read(self) -> TimedFrame:
        if self.left == 0:
            raise CameraError("camera 0 stopped delivering frames (unplugged or in use?)")
        self.left -= 1
        time.sleep(0.02)
        n = 3 - self.left
        image = np.full((48, 64, 3), 40 * n, np.uint8)
        return TimedFrame(image, n, n, Fraction(1, 30), n / 30)

    def close(self) -> None:
        pass


def test_a_failing_source_shows_an_error_and_the_window_stays_usable(
    qtbot, make_window, small_clip, broken_file
):
    window = make_window(passthrough=True)
    window.open_path(small_clip)
    window.pairs.wait(qtbot)
    # An unreadable file: an error, and the clip keeps playing.
    with qtbot.waitSignal(window.error_shown, timeout=5000):
        assert not window.open_path(broken_file)
    assert "broken.mp4" in window.last_error and window.error_dialog.isVisible()
    assert window.opened.label == small_clip.name
    count = len(window.pairs)
    qtbot.waitUntil(lambda: len(window.pairs) > count + 2, timeout=10000)
    # A camera unplugged mid-stream: an error, the last frame stays, the window still works.
    window.error_dialog.close()
    with qtbot.waitSignal(window.source_stopped, timeout=10000):
        window.open_source(OpenedSource(_FailingCamera(), CAMERA, "camera 0", "camera:0"))
    assert "stopped delivering frames" in window.last_error
    assert window.error_dialog.isVisible() and window.view.has_frames()
    assert window.open_path(small_clip)
    count = len(window.pairs)
    qtbot.waitUntil(lambda: len(window.pairs) > count + 2, timeout=10000)


def test_a_model_that_fails_keeps_the_previous_one(qtbot, make_window, models_dir, tmp_path):
    # A second card whose sha256 does not match its ONNX file.
    card = (models_dir / f"{MODEL}.json").read_text()
    folder = tmp_path / "models"
    folder.mkdir()
    for f in models_dir.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "broken.json").write_text(
        card.replace(f'"name": "{MODEL}"', '"name": "broken"').replace(
            '"sha256": "', '"sha256": "0'
        )
    )
    window = make_window(models_dir=folder, model=MODEL)
    wait_model(qtbot, window)
    items = window.panel.model_list
    broken = next(items.item(i) for i in range(items.count()) if items.item(i).text() == "broken")
    with qtbot.waitSignal(window.error_shown, timeout=20000):
        items.setCurrentItem(broken)
    assert "does not match its card" in window.last_error
    assert window.active_model.name == MODEL and items.currentItem().text() == MODEL


class _BreaksOnThirdFrame(IdentityBackend):
    name = "breaking"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def infer(self, frames):
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("device lost")
        return super().infer(frames)


def _fragile(copies: int):
    if copies == 1:
        return _BreaksOnThirdFrame()
    return StreamedBackend([_BreaksOnThirdFrame() for _ in range(copies)])


@pytest.mark.parametrize("copies", [1, 2])
def test_a_backend_failing_at_run_time_falls_back(qtbot, make_window, small_clip, copies):
    window = make_window()
    wait_model(qtbot, window)
    window.open_path(small_clip, playing=False)
    window.pairs.wait(qtbot, _with_model)
    breaking = LoadRequest(
        None, factory=lambda: Selection(_fragile(copies), "fragile", []), name="fragile"
    )
    # Warm-up and the redraw pass on the first copy; its next frame fails (with two copies,
    # the first frame in flight goes to the first copy).
    window.request_load(breaking)
    wait_model(qtbot, window, "fragile")
    assert window.active_model.in_flight == copies
    with qtbot.waitSignal(window.error_shown, timeout=20000):
        window.step(1)
    assert "device lost" in window.last_error and "Switched back" in window.last_error
    wait_model(qtbot, window, MODEL)
    window.step(1)
    window.pairs.wait(qtbot, lambda p: _with_model(p) and p.captured.frame.index >= 2)


@pytest.mark.skipif(auto_streams() < 2, reason="one core: no frames to overlap")
def test_overlapped_frames_play_a_file_in_order_and_overlap_can_be_turned_off(
    qtbot, make_window, small_clip, settings_path
):
    window = make_window()
    wait_model(qtbot, window)
    assert window.panel.overlap_check.isChecked()  # on by default with two or more cores
    assert window.active_model.in_flight == 2
    assert "2 frames at once" in window.panel.active_label.text()
    window.loop_action.setChecked(False)
    window.open_path(small_clip)
    window.pairs.wait(qtbot, lambda p: p.captured.frame.index == 11 and not p.refresh)
    shown = [p for p in window.pairs if _with_model(p) and not p.refresh]
    indices = [p.captured.frame.index for p in shown]
    assert indices == sorted(set(indices))  # in order, none twice
    # Every frame in between was inferred (the display may skip one, the worker does not).
    assert shown[-1].processed - shown[0].processed == indices[-1] - indices[0]
    assert all(p.t_infer_end > p.t_infer_start for p in shown)
    window.panel.overlap_check.setChecked(False)
    qtbot.waitUntil(lambda: window.active_model.in_flight == 1, timeout=30000)
    assert "at once" not in window.panel.active_label.text()
    window.seek(0.0)
    window.pairs.wait(qtbot, lambda p: p.captured.frame.index == 0 and p.captured.serial > 12)
    window.save_settings()
    restarted = make_window()
    wait_model(qtbot, restarted)
    assert not restarted.panel.overlap_check.isChecked()
    assert restarted.active_model.in_flight == 1


def test_no_camera_gives_an_empty_list_and_a_clear_message(qtbot, make_window, tmp_path):
    def lister():
        return list_cameras(dev_glob=str(tmp_path / "video*"), sys_root=str(tmp_path / "sys"))

    window = make_window(camera_lister=lister)
    assert window.cameras == []
    assert window.camera_message == NO_CAMERAS_MESSAGE
    assert not window.camera_combo.isEnabled()
    assert window.camera_combo.currentText() == "No camera found"
    assert "no cameras found" in window.camera_combo.toolTip()


class _Slow(IdentityBackend):
    def infer(self, frames):
        time.sleep(0.06)
        return super().infer(frames)


def _slow(copies: int):
    return _Slow() if copies == 1 else StreamedBackend([_Slow() for _ in range(copies)])


@pytest.mark.parametrize("copies", [1, 2])
def test_live_sources_drop_frames_and_files_do_not(qtbot, make_window, fast_clip, copies):
    window = make_window(passthrough=True)
    window.loop_action.setChecked(False)
    slow = LoadRequest(None, factory=lambda: Selection(_slow(copies), "slow", []), name="slow")
    window.request_load(slow)
    wait_model(qtbot, window, "slow")
    assert window.active_model.in_flight == copies
    # CameraSource through OpenCV on a file: read as fast as it decodes, like a live feed.
    assert window.open_camera(fast_clip)
    assert window.opened.kind == CAMERA
    with qtbot.waitSignal(window.source_stopped, timeout=20000):
        pass
    live = window.pairs.wait(qtbot, lambda p: p.captured.serial == 40)
    assert live.captured.dropped > 0
    assert live.captured.frame.time > 0 and live.captured.frame.time_base == Fraction(1, 10**6)
    # The same clip as a file: all 40 frames inferred, none dropped by the capture slot.
    window.pairs.clear()
    window.open_path(fast_clip)
    last = window.pairs.wait(qtbot, lambda p: p.captured.frame.index == 39, timeout=30000)
    assert last.captured.dropped == 0 and last.captured.serial == 40
    assert (
        last.processed - window.pairs[0].processed
        == last.captured.serial - window.pairs[0].captured.serial
    )
    indices = [p.captured.frame.index for p in window.pairs if not p.refresh]
    assert indices == sorted(set(indices))  # shown in order, with frames in flight too


def test_dropping_a_file_opens_it_and_help_lists_the_shortcuts(qtbot, make_window, small_clip):
    window = make_window(passthrough=True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_clip))])
    event = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.opened is not None and window.opened.label == small_clip.name
    window.pairs.wait(qtbot)
    dialog = window.show_shortcuts()
    texts = {dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert "Hold to show the original" in texts and "Split (wipe) with a draggable divider" in texts


def test_without_models_the_app_says_so_and_shows_the_original(
    qtbot, make_window, empty_models_dir, small_clip
):
    window = make_window(models_dir=empty_models_dir)
    assert "No model found" in window.panel.model_message.text()
    window.open_path(small_clip, playing=False)
    pair = window.pairs.wait(qtbot)
    assert pair.model is None and pair.result is pair.original
    assert window.active_model is None and "no model" in window.stats_text()


def test_passthrough_selection_is_an_identity():
    selection = passthrough_selection()
    assert isinstance(selection.backend, IdentityBackend)
    assert "pass-through" in selection.describe()
