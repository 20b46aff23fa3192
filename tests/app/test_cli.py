"""``rtdeblur app``: the command's options, and a short benchmark run in a real process."""

import argparse
import json
import os
import subprocess
import sys

from app import cli


def test_the_command_registers_its_options():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.register(sub)
    args = parser.parse_args(["app", "clip.mp4", "--backend", "onnxruntime", "--passthrough"])
    assert args.source == "clip.mp4" and args.backend == "onnxruntime" and args.passthrough
    assert args.func is cli.run
    args = parser.parse_args(["app", "--camera", "0", "--benchmark-seconds", "3"])
    assert args.source is None and args.camera == "0" and args.benchmark_seconds == 3.0


def test_benchmark_run_prints_the_apps_own_statistics(small_clip, tmp_path, empty_models_dir):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "app", str(small_clip), "--passthrough",
        "--settings", str(tmp_path / "s.ini"), "--models-dir", str(empty_models_dir),
        "--benchmark-seconds", "2.5", "--json", str(report),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "display path per frame, median (ms)" in done.stdout
    assert "model: pass-through" in done.stdout
    figures = json.loads(report.read_text())
    assert figures["frames"] > 5 and figures["display_ms_median"] > 0
    assert (tmp_path / "s.ini").is_file()  # the settings went to the file named, not the user's


def test_without_a_display_the_command_says_so(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([])) == 1
    assert "no display" in capsys.readouterr().err
