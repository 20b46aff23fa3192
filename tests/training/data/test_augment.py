import numpy as np
import pytest

from training.data.augment import (
    ColourJitter,
    ColourJitterConfig,
    apply_colour_jitter,
    crop_size,
    dihedral,
    random_crop_origin,
    random_dihedral_code,
    reflect_crop,
    sample_colour_jitter,
)


def test_reflect_crop_mirrors_outside_the_image():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = np.pad(image, ((12, 12), (15, 15), (0, 0)), mode="reflect")
    for top, left in [(-3, -4), (2, 3), (-12, -15), (1, -10)]:
        out = reflect_crop(image, top, left, 9, 11)
        assert np.array_equal(out, padded[top + 12 : top + 21, left + 15 : left + 26])
    far = reflect_crop(image, 30, -40, 4, 4)  # mirrored again and again
    assert np.array_equal(far, np.pad(image, ((40, 40), (40, 40), (0, 0)), "reflect")[70:74, :4])


def test_crop_origins_keep_the_margin_inside_when_the_image_allows():
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left = random_crop_origin(rng, 100, 120, (64, 64), margin=10)
        assert 10 <= top <= 100 - 74 and 10 <= left <= 120 - 74
        top, left = random_crop_origin(rng, 40, 50, (64, 64))
        assert -24 <= top <= 0 and -14 <= left <= 0


def test_the_eight_dihedral_codes_are_distinct():
    image = np.arange(12).reshape(3, 4)
    outs = {dihedral(image, c).tobytes() + bytes(dihedral(image, c).shape) for c in range(8)}
    assert len(outs) == 8
    assert np.array_equal(dihedral(image, 0), image)
    rng = np.random.default_rng(0)
    codes = {random_dihedral_code(rng, square=False) for _ in range(200)}
    assert codes == {0, 2, 4, 6}  # non-square crops only get half turns
    assert {random_dihedral_code(rng, flips=False, rotations=False) for _ in range(20)} == {0}


def test_colour_jitter_is_a_per_pixel_map_and_grayscale_is_three_equal_channels():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert apply_colour_jitter(image, None) is image
    jitter = sample_colour_jitter(rng, ColourJitterConfig(probability=1.0))
    whole = apply_colour_jitter(image, jitter)
    assert np.array_equal(whole[4:9, 2:7], apply_colour_jitter(image[4:9, 2:7], jitter))
    grey = apply_colour_jitter(image, ColourJitter(grayscale=True))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert sample_colour_jitter(rng, ColourJitterConfig(probability=0.0)) is None


def test_crop_size_and_config_validation():
    assert crop_size(256) == (256, 256) and crop_size([64, 96]) == (64, 96)
    with pytest.raises(ValueError, match="crop"):
        crop_size((1, 2, 3))
    with pytest.raises(ValueError, match="gamma"):
        ColourJitterConfig(gamma=(1.2, 0.8))
