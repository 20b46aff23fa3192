from pathlib import Path

import numpy as np
import pytest

from engine.metrics import psnr, ssim

skimage_metrics = pytest.importorskip("skimage.metrics")
cv2 = pytest.importorskip("cv2")
PHOTO = Path(__file__).parents[2].parent / "shared/data/photos/val/gcompris_goat.jpg"


def _pairs():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    noisy = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    yield a, noisy
    if PHOTO.is_file():
        photo = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)[:200, :300]
        yield photo, cv2.GaussianBlur(photo, (9, 9), 2.0)
        yield photo[..., 0], cv2.GaussianBlur(photo, (5, 5), 1.0)[..., 0]


@pytest.mark.parametrize("pair", list(_pairs()), ids=["noise", "photo-blur", "gray"][:3])
def test_values_equal_scikit_image(pair):
    a, b = pair
    want_psnr = skimage_metrics.peak_signal_noise_ratio(a, b, data_range=255)
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    want_ssim = skimage_metrics.structural_similarity(a, b, data_range=255, **kw)
    assert psnr(a, b) == pytest.approx(want_psnr, abs=1e-9)
    assert ssim(a, b) == pytest.approx(want_ssim, abs=1e-6)


def test_identical_images_and_bad_pairs():
    a = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:8])
    with pytest.raises(ValueError, match="at least 7"):
        ssim(a[:5, :5], a[:5, :5])
