from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data import (
    DatasetError,
    PairedFolderDataset,
    SyntheticBlurDataset,
    blur_video,
    build_validation_set,
    write_validation_set,
)
from training.data.colour import srgb_uint8_to_linear
from training.data.synthetic import KINDS, extent_scale

SHARED = Path(__file__).parents[3].parent / "shared" / "data"
CLEAN = {"degradation": None, "colour_jitter": None}


def _texture(rng, h, w):
    # Smooth colour blobs plus fine detail: something blur visibly changes.
    base = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h))
    detail = rng.integers(-40, 41, (h, w, 3))
    return np.clip(base.astype(int) + detail, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(160, 224), (192, 160), (96, 112)]):  # the last < crop
        cv2.imwrite(str(folder / f"p{i}.png"), _texture(rng, h, w))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_blurs_in_linear_light_and_keeps_the_light(photos, kind):
    ds = SyntheticBlurDataset(photos, crop=128, seed=3, weights={kind: 1}, length=6, **CLEAN)
    for i in range(len(ds)):
        blur, sharp, meta = ds.sample(i)
        assert meta["kind"] == kind
        assert blur.shape == sharp.shape == (128, 128, 3)
        assert blur.dtype == sharp.dtype == np.uint8
        if meta["extent_px"] > 3:
            assert np.abs(blur.astype(int) - sharp).mean() > 1.0
        # Blur moves light around but does not create or destroy it.
        lin_b, lin_s = srgb_uint8_to_linear(blur).mean(), srgb_uint8_to_linear(sharp).mean()
        assert lin_b == pytest.approx(lin_s, rel=0.03)


def test_items_are_tensors_in_zero_one_and_deterministic_per_seed_epoch_index(photos):
    ds = SyntheticBlurDataset(photos, crop=64, seed=1, length=5)
    item = ds[2]
    assert set(item) == {"blur", "sharp"}
    for t in item.values():
        assert tuple(t.shape) == (3, 64, 64) and str(t.dtype) == "torch.float32"
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    again = SyntheticBlurDataset(photos, crop=64, seed=1, length=5)[2]
    assert all(bool((item[k] == again[k]).all()) for k in item)
    ds.set_epoch(1)
    assert not bool((ds[2]["blur"] == item["blur"]).all())
    other_seed = SyntheticBlurDataset(photos, crop=64, seed=2, length=5)[2]
    assert not bool((other_seed["sharp"] == item["sharp"]).all())


def test_dataloader_worker_count_does_not_change_the_items(photos):
    torch = pytest.importorskip("torch")
    ds = SyntheticBlurDataset(photos, crop=48, seed=5, length=6)

    def batches(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=workers)
        return [b["blur"] for b in loader]

    serial, parallel = batches(0), batches(2)
    assert all(bool((a == b).all()) for a, b in zip(serial, parallel, strict=True))


def test_small_photos_are_reflection_padded_and_extents_scale_with_size(photos):
    ds = SyntheticBlurDataset(photos, crop=128, seed=0, length=3, **CLEAN)
    blur, sharp, meta = ds.sample(2)  # p2.png is 96×112, smaller than the crop
    assert blur.shape == sharp.shape == (128, 128, 3)
    assert extent_scale(720, 1280, (1280, 720)) == 1.0
    scale = extent_scale(96, 112, (1280, 720))
    assert 2.0 * scale <= meta["extent_px"] <= 35.0 * scale


def test_a_still_camera_gives_the_sharp_image(photos):
    for kind in ("psf", "homography"):
        ds = SyntheticBlurDataset(
            photos, crop=64, weights={kind: 1}, synthesis={"extent_px": (0, 0)}, **CLEAN
        )
        blur, sharp, _ = ds.sample(0)
        assert np.abs(blur.astype(int) - sharp).max() <= 1


def test_bad_arguments_give_clear_errors(photos, tmp_path):
    with pytest.raises(ValueError, match="unknown blur kinds"):
        SyntheticBlurDataset(photos, weights={"gaussian": 1})
    with pytest.raises(ValueError, match="not all 0"):
        SyntheticBlurDataset(photos, weights={"psf": 0})
    with pytest.raises(ValueError, match="unknown synthesis keys"):
        SyntheticBlurDataset(photos, synthesis={"extent": (1, 2)})
    with pytest.raises(DatasetError, match=r"no images matched .*png"):
        SyntheticBlurDataset(tmp_path)


def test_validation_set_is_fixed_and_round_trips_through_a_paired_folder(photos, tmp_path):
    items = build_validation_set(photos, seed=4, crop=64, per_image=2)
    assert len(items) == 6
    assert len({m["name"] for *_, m in items}) == 6
    again = build_validation_set(photos, seed=4, crop=64, per_image=2)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(items, again, strict=True))
    assert all(m["colour_jitter"] is None and m["dihedral"] == 0 for *_, m in items)

    out = write_validation_set(photos, tmp_path / "val", seed=4, crop=64, per_image=2)
    paired = PairedFolderDataset(out, crop=None)
    assert len(paired) == 6
    by_name = {m["name"]: (b, s) for b, s, m in items}
    for i in range(len(paired)):
        blur, sharp = paired.load_pair(i)
        want = by_name[Path(paired.name(i)).stem]
        assert np.array_equal(blur, want[0]) and np.array_equal(sharp, want[1])

    stamp = (out / "meta.json").stat().st_mtime_ns
    write_validation_set(photos, out, seed=4, crop=64, per_image=2)  # same settings: reused
    assert (out / "meta.json").stat().st_mtime_ns == stamp
    write_validation_set(photos, out, seed=5, crop=64, per_image=1)  # new settings: rebuilt
    assert len(PairedFolderDataset(out, crop=None)) == 3
    foreign = tmp_path / "mine"
    foreign.mkdir()
    with pytest.raises(FileExistsError):
        write_validation_set(photos, foreign, crop=64, per_image=1)


def test_blur_video_is_deterministic_and_changes_smoothly_over_time():
    rng = np.random.default_rng(0)
    frame = _texture(rng, 96, 128)
    frames = [frame] * 16
    out = list(blur_video(frames, seed=3, max_extent_px=8.0, fps=25.0))
    assert len(out) == 16 and all(f.shape == frame.shape and f.dtype == np.uint8 for f in out)
    assert all(np.abs(f.astype(int) - frame).mean() > 0.5 for f in out)
    assert all(np.array_equal(a, b) for a, b in zip(out, blur_video(frames, 3, 8.0), strict=True))

    def diff(a, b):
        return np.abs(a.astype(int) - b).mean()

    near = np.mean([diff(out[k], out[k + 1]) for k in range(15)])
    far = np.mean([diff(out[k], out[k + 8]) for k in range(8)])
    assert near < far  # neighbouring frames share most of their shake
    still = list(blur_video(frames[:2], seed=3, max_extent_px=0.0))
    assert np.array_equal(still[0], frame)


@pytest.mark.skipif(not (SHARED / "photos").is_dir(), reason="shared photos not present")
def test_real_photos_give_every_kind_and_validation_uses_val_only():
    train = SHARED / "photos" / "train"
    for kind in KINDS:
        ds = SyntheticBlurDataset(train, crop=96, seed=0, weights={kind: 1}, length=1)
        blur, _, meta = ds.sample(0)
        assert blur.shape == (96, 96, 3) and meta["kind"] == kind
    items = build_validation_set(SHARED / "photos" / "val", crop=48, per_image=1)
    val_names = {p.name for p in (SHARED / "photos" / "val").iterdir()}
    assert {m["photo"] for *_, m in items} <= val_names
    assert not {m["photo"] for *_, m in items} & {p.name for p in train.iterdir()}


def test_training_pool_holds_the_dataset_items_and_is_reused(photos, tmp_path):
    from training.data.synthetic import pool_dataset, write_training_pool

    ds = pool_dataset(photos, count=7, crop=48, seed=2)
    calls = []
    out = write_training_pool(
        ds, tmp_path / "pool", workers=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (7, 7)
    paired = PairedFolderDataset(out, crop=None)
    assert len(paired) == 7
    fresh = pool_dataset(photos, count=7, crop=48, seed=2)
    for i in range(7):  # written by worker processes, yet item i is exactly sample(i)
        blur, sharp = paired.load_pair(i)
        want_blur, want_sharp, _ = fresh.sample(i)
        assert paired.name(i) == f"blur/{i:06d}.png"
        assert np.array_equal(blur, want_blur) and np.array_equal(sharp, want_sharp)
    assert not np.array_equal(*paired.load_pair(0))

    stamp = (out / "meta.json").stat().st_mtime_ns
    write_training_pool(pool_dataset(photos, count=7, crop=48, seed=2), out)
    assert (out / "meta.json").stat().st_mtime_ns == stamp  # same settings: reused
    write_training_pool(pool_dataset(photos, count=3, crop=48, seed=2), out)
    assert len(PairedFolderDataset(out, crop=None)) == 3  # other settings: rebuilt
    assert not list(tmp_path.glob(".pool.tmp-*"))
    with pytest.raises(FileExistsError, match="not a rtdeblur synthetic training pool"):
        write_training_pool(pool_dataset(photos, count=3, crop=48), photos)
    with pytest.raises(ValueError, match="at least 1 item"):
        pool_dataset(photos, count=0, crop=48)
