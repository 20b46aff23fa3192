import numpy as np
import pytest

from training.data import DatasetError, PairedFolderDataset
from training.data.paired import write_rgb


def _pair_folder(folder, names, size=(40, 50), seed=0):
    rng = np.random.default_rng(seed)
    (folder / "blur").mkdir(parents=True)
    (folder / "sharp").mkdir(parents=True)
    for name in names:
        blur = rng.integers(0, 255, (*size, 3), dtype=np.uint8)  # < 255: sharp = blur + 1 fits
        write_rgb(folder / "blur" / f"{name}.png", blur)
        write_rgb(folder / "sharp" / f"{name}.png", blur + 1)


def test_flat_layout_pairs_by_name_and_crops_both_alike(tmp_path):
    _pair_folder(tmp_path, ["b", "a", "c"])
    ds = PairedFolderDataset(tmp_path, crop=32, seed=1)
    assert len(ds) == 3 and ds.name(0) == "blur/a.png"
    for i in range(3):
        item = ds[i]
        assert tuple(item["blur"].shape) == (3, 32, 32)
        diff = (item["sharp"] - item["blur"]) * 255
        assert float((diff - 1).abs().max()) < 1e-4  # same window, same flip/rotation


def test_gopro_layout_reads_every_sequence(tmp_path):
    _pair_folder(tmp_path / "GOPR0001", ["000001", "000002"])
    _pair_folder(tmp_path / "GOPR0002", ["000001"], seed=1)
    (tmp_path / "GOPR0002" / "blur_gamma").mkdir()  # ignored, as in GoPro
    ds = PairedFolderDataset(tmp_path, crop=None)
    assert len(ds) == 3 and ds.name(2) == "GOPR0002/blur/000001.png"
    blur, sharp = ds.sample(2)
    assert blur.shape == (40, 50, 3) and np.array_equal(sharp, blur + 1)


def test_crops_larger_than_the_images_are_reflection_padded(tmp_path):
    _pair_folder(tmp_path, ["a"], size=(20, 24))
    blur, sharp = PairedFolderDataset(tmp_path, crop=48, flips=False, rotations=False).sample(0)
    assert blur.shape == (48, 48, 3) and np.array_equal(sharp, blur + 1)


def test_empty_folders_name_the_glob(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    with pytest.raises(DatasetError, match=r"no images matched '.*blur/\*' with extension png"):
        PairedFolderDataset(tmp_path)
    with pytest.raises(DatasetError, match="GoPro layout"):
        PairedFolderDataset(tmp_path / "blur")


def test_unmatched_names_are_listed(tmp_path):
    _pair_folder(tmp_path, ["a", "b", "c"])
    (tmp_path / "sharp" / "b.png").rename(tmp_path / "sharp" / "x.png")
    with pytest.raises(DatasetError, match=r"have no sharp twin: b;.*have no blur twin: x"):
        PairedFolderDataset(tmp_path)


def test_size_mismatch_names_the_pair(tmp_path):
    _pair_folder(tmp_path, ["a"])
    write_rgb(tmp_path / "sharp" / "a.png", np.zeros((41, 50, 3), np.uint8))
    ds = PairedFolderDataset(tmp_path)
    with pytest.raises(DatasetError, match=r"sizes differ: .*blur/a.png is 50x40, .*sharp/a.png"):
        ds[0]


def test_unreadable_image_is_named(tmp_path):
    _pair_folder(tmp_path, ["a"])
    (tmp_path / "blur" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot decode .*a.png"):
        PairedFolderDataset(tmp_path)[0]
