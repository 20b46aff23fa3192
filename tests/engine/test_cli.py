import json
import shutil
import subprocess
import sys

import pytest

from engine.cli import main
from engine.models import get_spec, list_models


def _rtdeblur():
    exe = shutil.which("rtdeblur")
    return [exe] if exe else [sys.executable, "-m", "engine.cli"]


def test_help_lists_the_commands():
    result = subprocess.run([*_rtdeblur(), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "models" in result.stdout and "export" in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_models_json_lists_every_model_within_tolerance():
    pytest.importorskip("torch")
    result = subprocess.run(
        [*_rtdeblur(), "models", "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list_models()
    for row in rows:
        spec = get_spec(row["name"])
        assert row["macs"] > 0 and row["frame"] == "1280x720"
        if spec.params is not None:
            assert abs(row["params_deviation"]) <= spec.params_tolerance, row


def test_models_table(capsys):
    pytest.importorskip("torch")
    assert main(["models", "--size", "640x360"]) == 0
    out = capsys.readouterr().out
    assert "GMAC@640x360" in out
    for name in list_models():
        assert name in out


def test_models_rejects_a_bad_size():
    with pytest.raises(SystemExit, match="1280x720"):
        main(["models", "--size", "big"])
