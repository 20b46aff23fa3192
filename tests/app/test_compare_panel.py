"""The Compare panel: live graph, A/B view, report export, and its place in the main window."""

from __future__ import annotations

import csv
from fractions import Fraction

import cv2
import pytest

from app.compare_panel import NO_REFERENCE, ComparePanel
from engine.modelcard import find_cards
from engine.video import FileSource, VideoSink
from tests.app.conftest import MODEL, write_clip

FRAMES = 6


@pytest.fixture
def panel(qtbot, models_dir):
    cards, _ = find_cards(models_dir)
    widget = ComparePanel(lambda: ("onnxruntime", "cpu"))
    widget.set_cards(cards)
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("compare_clip") / "c.mp4", FRAMES, size=(64, 48))


def test_graph_has_n_points_after_n_frames(qtbot, panel, clip, tmp_path):
    assert panel.a_combo.currentText() == "Original"
    assert panel.b_combo.currentText() == MODEL
    assert not panel.run_button.isEnabled()  # no clip yet
    panel.set_source(clip)
    scored = []
    panel.frame_scored.connect(scored.append)
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.start()
    result = blocker.args[0]
    assert not isinstance(result, str), result
    assert len(scored) == FRAMES and len(result.frames) == FRAMES
    names = panel.chart.series_names()
    assert names == ["A: input", f"B: {MODEL}"]
    for name in names:
        assert panel.chart.point_count(name) == FRAMES
    # The chart shows the engine's numbers for the chosen metric.
    metric = panel.metric_combo.currentData()
    assert panel.chart.values(f"B: {MODEL}") == result.series(MODEL, metric)
    panel.metric_combo.setCurrentIndex(panel.metric_combo.findData("flicker"))
    assert panel.chart.point_count("A: input") == FRAMES
    qtbot.waitUntil(panel.view.has_frames, timeout=5000)  # the A/B view shows the results
    assert panel.export_button.isEnabled()

    with qtbot.waitSignal(panel.report_exported, timeout=60000) as blocker:
        assert panel.export_report(tmp_path / "report")
    files = blocker.args[0]
    assert not isinstance(files, str), files
    assert files.html.is_file()
    with open(files.csv, newline="") as f:
        assert len(list(csv.reader(f))) == 1 + FRAMES


def test_both_original_is_refused(panel, clip):
    panel.set_source(clip)
    panel.b_combo.setCurrentIndex(0)
    assert not panel.start()
    assert "Choose a model" in panel.status_label.text()


def test_main_window_has_compare_dock(make_window, small_clip):
    window = make_window()
    panel = window.compare_panel
    assert window.compare_dock.widget() is panel
    assert [panel.b_combo.itemText(i) for i in range(panel.b_combo.count())] == ["Original", MODEL]
    assert window.open_path(small_clip)
    assert panel.source_path == small_clip
    assert panel.run_button.isEnabled()


def _blurred_copy(clip, path):
    """The clip, blurred (its sharp version is the clip itself)."""
    with FileSource(clip) as src:
        frames = [cv2.GaussianBlur(f.image, (7, 7), 2.0) for f in src]
    h, w = frames[0].shape[:2]
    with VideoSink(path, w, h, codec="h264", frame_rate=10, time_base=Fraction(1, 10)) as sink:
        for i, frame in enumerate(frames):
            sink.write(frame, i)
    return path


def test_a_reference_gives_psnr_and_ssim_until_another_clip_opens(qtbot, panel, clip, tmp_path):
    blurred = _blurred_copy(clip, tmp_path / "blurred.mp4")
    panel.set_source(blurred)
    assert panel.reference_label.text() == NO_REFERENCE
    assert panel.reference_button.isEnabled() and not panel.reference_clear.isEnabled()
    panel.set_reference(clip)
    assert panel.reference_label.text() == clip.name and panel.reference_clear.isEnabled()
    metrics = [panel.metric_combo.itemData(i) for i in range(panel.metric_combo.count())]
    assert metrics == ["psnr", "ssim"]
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.start()
    result = blocker.args[0]
    assert not isinstance(result, str), result
    assert result.paired and len(result.frames) == FRAMES
    assert panel.chart.values(f"B: {MODEL}") == result.series(MODEL, "psnr")
    assert panel.chart.values("A: input") == result.series("input", "psnr")
    assert 15.0 < result.summary["input"]["psnr"].mean < 45.0  # blurred, so not identical
    assert "PSNR" in panel.summary_label.text() and "against the reference" in (
        panel.summary_label.text()
    )
    # Another clip: the reference belonged to the last one.
    panel.set_source(clip)
    assert panel.reference_path is None and panel.reference_label.text() == NO_REFERENCE
    assert panel.metric_combo.findData("laplacian_var") >= 0


def test_a_reference_of_another_size_is_refused_and_a_shorter_one_noted(
    qtbot, panel, clip, tmp_path
):
    panel.set_source(clip)
    panel.set_reference(write_clip(tmp_path / "big.mp4", FRAMES, size=(96, 64)))
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.start()
    assert isinstance(blocker.args[0], str) and "sizes must match" in blocker.args[0]
    assert "sizes must match" in panel.status_label.text()
    panel.set_reference(write_clip(tmp_path / "short.mp4", FRAMES - 2, size=(64, 48)))
    with qtbot.waitSignal(panel.run_finished, timeout=60000) as blocker:
        assert panel.start()
    assert len(blocker.args[0].frames) == FRAMES - 2
    assert f"the reference ends after {FRAMES - 2} frames" in panel.status_label.text()
    panel.reference_clear.click()
    assert panel.reference_path is None and panel.metric_combo.findData("flicker") >= 0
