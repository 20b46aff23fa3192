"""The Process files dialog: a queue processed with ``rtdeblur process``'s code."""

import pytest

from app.process_dialog import ProcessDialog, format_eta
from engine.process import CANCELLED, FAILED, OK
from engine.video import FileSource
from tests.app.conftest import wait_model, write_clip


def test_the_dialog_finishes_a_queue_and_lists_a_broken_file_as_failed(
    qtbot, make_window, small_clip, broken_file, tmp_path
):
    window = make_window()
    wait_model(qtbot, window)
    window.set_output_folder(tmp_path / "out")
    dialog = window.open_process_dialog([str(small_clip), str(broken_file)])
    assert dialog.paths() == [str(small_clip), str(broken_file)]
    dialog.start()  # runs in its own thread, with its own backend
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=60000)
    rows = dialog.result_rows()
    assert [r[0] for r in rows] == [OK, FAILED]
    assert rows[1][1] == "broken.mp4" and "broken.mp4" in rows[1][2]
    assert "not a media file" in rows[1][2] or "cannot" in rows[1][2]
    out = tmp_path / "out" / "small.mp4"
    assert rows[0][2] == str(out)
    with FileSource(out) as src:
        assert sum(1 for _ in src) == 12
    assert dialog.file_bar.value() == dialog.file_bar.maximum()
    assert "1 ok" in dialog.summary_label.text() and "1 failed" in dialog.summary_label.text()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_cancel_stops_the_run_and_leaves_no_partial_file(qtbot, make_window, tmp_path):
    window = make_window()
    wait_model(qtbot, window)
    long_clip = write_clip(tmp_path / "long.mp4", 120, size=(320, 240))
    dialog = window.open_process_dialog([str(long_clip)])
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.file_bar.value() > 0, timeout=60000)
    assert "ETA" in dialog.file_label.text()
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=60000)
    assert [r[0] for r in dialog.result_rows()] == [CANCELLED]
    assert list((tmp_path / "out").iterdir()) == []  # the partial output was discarded


def test_without_a_model_the_dialog_cannot_start(qtbot):
    dialog = ProcessDialog(None, "No model loaded", "/tmp")
    qtbot.addWidget(dialog)
    assert not dialog.start_button.isEnabled() and "No model" in dialog.summary_label.text()


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "–"), (5, "0:05"), (75, "1:15"), (3725, "1:02:05")]
)
def test_eta_format(seconds, text):
    assert format_eta(seconds) == text


def test_offline_runs_on_the_cpu_deblur_frames_side_by_side(qtbot, make_window):
    from app.main_window import build_selection
    from engine.backends.streams import auto_streams

    window = make_window()
    wait_model(qtbot, window)
    selection = build_selection(window.active_model.request)
    try:
        assert selection.backend.device == "cpu"
        assert getattr(selection.backend, "streams", 1) == auto_streams()
    finally:
        selection.backend.close()
