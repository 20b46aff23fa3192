import json

import pytest

from engine.cli import main


def test_bench_times_configurations_against_the_reference(tmp_path, capsys):
    pytest.importorskip("torch")
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    status = main(
        [
            "bench",
            "--models", "fpn_mobilenet_dsc",
            "--backends", "onnxruntime,torch",
            "--sizes", "96x64",
            "--streams", "1,2",
            "--runs", "20",
            "--warmup", "1",
            "--soak", "3",
            "--json", str(out_json),
            "--markdown", str(out_md),
        ]
    )  # fmt: skip
    assert status == 0
    report = json.loads(out_json.read_text())
    rows = report["results"]
    assert rows[0]["model"].endswith("(upstream way)") and rows[0]["fps"] > 0
    measured = {(r["backend"], r["precision"], r["streams"]): r for r in rows[1:]}
    # Streams apply to ONNX Runtime sessions; torch runs once.
    assert set(measured) == {("onnxruntime", "fp32", 1), ("onnxruntime", "fp32", 2),
                             ("torch", "fp32", 1)}  # fmt: skip
    assert measured["onnxruntime", "fp32", 2]["batch"] == 2
    for r in measured.values():
        assert r["fps"] > 0 and r["p95_ms"] >= r["p50_ms"] > 0
        assert r["vs_reference"] == pytest.approx(r["fps"] / rows[0]["fps"])
    assert report["soak"]["frames"] > 0 and len(report["soak"]["rss_samples"]) >= 2
    text = out_md.read_text()
    assert "| fpn_mobilenet_dsc | onnxruntime |" in text and "Soak:" in text
    assert "× reference" in capsys.readouterr().out


def test_bench_reports_unavailable_backends_instead_of_failing(tmp_path):
    pytest.importorskip("torch")
    out_json = tmp_path / "bench.json"
    args = ["bench", "--backends", "tensorrt", "--sizes", "64x64", "--no-reference"]
    assert main([*args, "--runs", "20", "--json", str(out_json)]) == 0
    (row,) = json.loads(out_json.read_text())["results"]
    assert (
        row["fps"] is None and row["note"].startswith("unavailable") and "tensorrt" in row["note"]
    )


def test_bench_rejects_bad_arguments(capsys):
    assert main(["bench", "--sizes", "big"]) == 2
    assert main(["bench", "--runs", "5"]) == 2
    assert "at least 20" in capsys.readouterr().err
    assert main(["bench", "--streams", "0"]) == 2
    assert main(["bench", "--streams", "two"]) == 2
    assert "--streams takes whole numbers" in capsys.readouterr().err


def test_bench_compares_process_with_the_backend_alone(tmp_path):
    pytest.importorskip("torch")
    from tests.engine.video.clips import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=6, size=(64, 48))
    out_json = tmp_path / "bench.json"
    args = ["bench", "--sizes", "64x48", "--runs", "20", "--no-reference"]
    assert main([*args, "--process-clip", str(clip), "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())["process"]
    assert report["frames"] == 6 and report["size"] == "64x48"
    assert len(report["engine_fps"]) == len(report["process_fps"]) == 3
    assert report["ratio"] == pytest.approx(
        report["process_fps_median"] / report["engine_fps_median"]
    )
