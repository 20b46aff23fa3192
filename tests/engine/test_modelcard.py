import json

import pytest

from engine.modelcard import ModelCard, ModelCardError, find_cards, load_card, sha256_of


def _card(tmp_path, payload=b"onnx bytes"):
    onnx = tmp_path / "net.onnx"
    onnx.write_bytes(payload)
    card = ModelCard(
        name="net",
        architecture="fpn_mobilenet_dsc",
        version="1",
        input_range=[-1.0, 1.0],
        multiple=32,
        onnx="net.onnx",
        sha256=sha256_of(onnx),
    )
    card.save(tmp_path / "net.json")
    return card, onnx


def test_round_trip_and_verify(tmp_path):
    card, onnx = _card(tmp_path)
    loaded = load_card(tmp_path / "net.json")
    assert loaded == card
    assert loaded.verify() == onnx.resolve()


def test_a_changed_onnx_file_is_refused(tmp_path):
    _, onnx = _card(tmp_path)
    onnx.write_bytes(b"something else")
    with pytest.raises(ModelCardError, match="does not match its card"):
        load_card(tmp_path / "net.json").verify()


def test_missing_fields_and_bad_json_are_clear(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text(json.dumps({"name": "b"}))
    with pytest.raises(ModelCardError, match="not readable JSON"):
        load_card(tmp_path / "a.json")
    with pytest.raises(ModelCardError, match="lacks architecture"):
        load_card(tmp_path / "b.json")
    _card(tmp_path)
    cards, problems = find_cards(tmp_path)
    assert [c.name for c in cards] == ["net"]
    assert len(problems) == 2


def test_missing_fp16_file_is_reported(tmp_path):
    card, _ = _card(tmp_path)
    with pytest.raises(ModelCardError, match="no fp16"):
        card.verify(fp16=True)
