"""The Qt binding check: a binding that loses references is refused with the fix named."""

import argparse

from app import cli, qt_compat


def test_the_installed_binding_keeps_its_references():
    assert qt_compat.binding_problem() is None


def test_a_binding_that_loses_references_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(qt_compat, "_lost", lambda obj, call, trials: obj is None)
    message = qt_compat.binding_problem()
    assert "loses a reference to None on every call of a method" in message
    assert "True on every emitted signal" not in message
    assert "pip install 'PySide6-Essentials<6.12'" in message


def test_the_app_refuses_to_start_on_such_a_binding(monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(qt_compat, "binding_problem", lambda: "PySide6 9.9 loses references")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([])) == 1
    assert "error: PySide6 9.9 loses references" in capsys.readouterr().err
