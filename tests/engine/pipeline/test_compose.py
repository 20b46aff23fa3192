import numpy as np
import pytest

from engine.pipeline.compose import (
    HeatmapScratch,
    blend,
    difference_heatmap,
    heatmap_legend,
    side_by_side,
    to_display,
)


def _frames(h=24, w=40, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))


def test_blend_mixes_linearly_and_writes_into_the_given_buffer():
    a, b = _frames()
    out = np.empty_like(a)
    got = blend(a, b, 0.25, out)
    assert got is out
    want = np.round(0.75 * a.astype(np.float64) + 0.25 * b.astype(np.float64))
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.array_equal(blend(a, b, 0.0), a)
    assert np.array_equal(blend(a, b, 1.0), b)
    assert np.array_equal(blend(a, b, 7.0), b) and np.array_equal(blend(a, b, -1), a)
    # In place on the result buffer (how the app applies its intensity control).
    expected = blend(a, b, 0.5)
    assert blend(a, b, 0.5, out=b) is b and np.array_equal(b, expected)


def test_blend_refuses_mismatched_frames_and_buffers():
    a, b = _frames()
    with pytest.raises(ValueError, match="differ in shape"):
        blend(a, b[:, :-1], 0.5)
    with pytest.raises(ValueError, match="uint8"):
        blend(a.astype(np.float32), b, 0.5)
    with pytest.raises(ValueError, match="out must be"):
        blend(a, b, 0.5, out=np.empty((2, 2, 3), np.uint8))


def test_side_by_side_puts_left_then_right():
    a, b = _frames(10, 16)
    out = side_by_side(a, b)
    assert out.shape == (10, 32, 3)
    assert np.array_equal(out[:, :16], a) and np.array_equal(out[:, 16:], b)
    buf = np.zeros((10, 32, 3), np.uint8)
    assert side_by_side(a, b, buf) is buf and np.array_equal(buf, out)
    with pytest.raises(ValueError, match="out must be"):
        side_by_side(a, b, np.zeros((10, 16, 3), np.uint8))


def test_heatmap_is_black_where_equal_and_bright_where_different():
    a, _ = _frames(16, 16)
    b = a.copy()
    b[4:8, 4:8, 1] = np.clip(a[4:8, 4:8, 1].astype(int) + 60, 0, 255).astype(np.uint8) ^ 0x80
    scratch = HeatmapScratch()
    out = difference_heatmap(a, b, gain=4.0, scratch=scratch)
    legend = heatmap_legend(256)
    assert legend.shape == (1, 256, 3)
    # Unchanged pixels take the colour map's first entry (near black).
    assert np.array_equal(out[0, 0], legend[0, 0]) and out[0, 0].sum() < 10
    changed = out[4:8, 4:8].reshape(-1, 3).sum(1)
    assert changed.min() > 3 * out[0, 0].sum()
    # A single-channel change is seen (maximum over channels, not a luminance).
    c = a.copy()
    c[0, 0, 2] ^= 0xFF
    assert difference_heatmap(a, c)[0, 0].sum() > 400
    # The scratch buffers are reused for the same size.
    diff = scratch.diff
    difference_heatmap(a, b, gain=4.0, scratch=scratch)
    assert scratch.diff is diff


def test_heatmap_gain_saturates_and_legend_runs_dark_to_bright():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)
    low = difference_heatmap(a, b, gain=1.0)[0, 0].astype(int).sum()
    high = difference_heatmap(a, b, gain=30.0)[0, 0]
    assert high.astype(int).sum() > low
    assert np.array_equal(high, heatmap_legend(256)[0, -1])  # 10 × 30 ≥ 255 → top colour
    legend = heatmap_legend(64)[0].astype(int).sum(1)
    assert legend[0] < legend[32] < legend[-1]
    with pytest.raises(ValueError, match="gain"):
        difference_heatmap(a, b, gain=0)


def test_to_display_makes_qt_rgb32_pixels():
    a, _ = _frames(5, 7)
    out = to_display(a)
    assert out.shape == (5, 7, 4) and out.flags.c_contiguous
    words = out.view("<u4")[..., 0] if np.little_endian else out.view(">u4")[..., 0]
    r, g, bl = (a[..., i].astype(np.uint32) for i in range(3))
    assert np.array_equal(words, 0xFF000000 | (r << 16) | (g << 8) | bl)


@pytest.mark.parametrize("size", [(7, 5), (3, 2), (1, 1), (20, 13)])
def test_to_display_resizes_to_the_size_shown(size):
    flat = np.zeros((10, 14, 3), np.uint8)
    flat[...] = (200, 100, 50)
    out = to_display(flat, size=size)
    assert out.shape == (size[1], size[0], 4)
    assert np.array_equal(out.reshape(-1, 4), np.tile([50, 100, 200, 255], (size[0] * size[1], 1)))
    # A sharp edge shrunk to a quarter is averaged, not point-sampled.
    stripes = np.zeros((16, 16, 3), np.uint8)
    stripes[:, ::2] = 255
    assert 60 < to_display(stripes, size=(4, 4))[..., :3].mean() < 200
    with pytest.raises(ValueError, match="at least"):
        to_display(flat, size=(0, 3))
