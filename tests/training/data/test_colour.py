import numpy as np
import pytest

from training.data.colour import (
    linear_to_srgb,
    linear_to_srgb_uint8,
    srgb_to_linear,
    srgb_uint8_to_linear,
)


def test_every_8_bit_code_survives_a_round_trip_through_linear_light():
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([codes, codes[::-1], codes.T], axis=2)
    assert np.array_equal(linear_to_srgb_uint8(srgb_uint8_to_linear(rgb)), rgb)


def test_transfer_functions_match_the_standard():
    assert srgb_to_linear(np.array(0.5)) == pytest.approx(0.214041, abs=1e-6)
    assert srgb_to_linear(np.array(0.04045)) == pytest.approx(0.04045 / 12.92, rel=1e-6)
    assert linear_to_srgb(np.array(0.0031308)) == pytest.approx(0.04045, abs=1e-6)
    assert linear_to_srgb(np.array(0.18)) == pytest.approx(0.461356, abs=1e-6)
    x = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)


def test_encoding_clips_out_of_range_light():
    assert np.array_equal(linear_to_srgb_uint8(np.array([-0.5, 0.0, 1.0, 3.0])), [0, 0, 255, 255])


def test_table_decode_equals_the_formula():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(
        srgb_uint8_to_linear(codes), srgb_to_linear(codes / 255.0), rtol=1e-6, atol=1e-9
    )
    with pytest.raises(TypeError):
        srgb_uint8_to_linear(codes.astype(np.float32))
