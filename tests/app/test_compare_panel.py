"""The Compare panel: live graph, A/B view, report export, and its place in the main window."""

from __future__ import annotations

import csv

import pytest

from app.compare_panel import ComparePanel
from engine.modelcard import find_cards
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
