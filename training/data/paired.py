"""Pairs of blurred and sharp images read from folders, and the image-file reading they share.

Two layouts are read:

* GoPro: ``<root>/<sequence>/blur/*.png`` with ``<root>/<sequence>/sharp/*.png`` (other folders
  in a sequence, such as GoPro's ``blur_gamma``, are ignored);
* flat: ``<root>/blur/*`` with ``<root>/sharp/*`` (what
  :func:`training.data.synthetic.write_validation_set` writes).

Files are paired by name (without extension). Anything that does not pair up is reported by
name in a :class:`DatasetError`, instead of failing later with an unpacking error as upstream
DeblurGAN-v2 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.data.augment import (
    crop_size,
    dihedral,
    item_rng,
    random_crop_origin,
    random_dihedral_code,
    reflect_crop,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class DatasetError(ValueError):
    """A dataset folder that cannot be read as asked; the message names the files or globs."""


def _glob_text(folder: Path) -> str:
    return f"'{folder}/*' with extension {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}"


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (extensions case-insensitive).

    Raises:
        DatasetError: the folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"not a folder: {folder}")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise DatasetError(f"no images matched {_glob_text(folder)}")
    return files


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as an 8-bit RGB frame (alpha dropped, grayscale made 3-channel).

    Returns:
        uint8 array, C-contiguous.

    Shape:
        - output: :math:`(H, W, 3)`

    Raises:
        DatasetError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)  # also works for non-ASCII paths, unlike imread
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DatasetError(f"cannot decode {path} as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_rgb(path: str | Path, image: np.ndarray) -> None:
    """Write an 8-bit RGB frame; the format follows the extension (PNG is lossless).

    Raises:
        OSError: the encoder or the write failed.
    """
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    buf.tofile(path)


def image_to_tensor(image: np.ndarray) -> Any:
    """uint8 HWC RGB → float32 CHW torch tensor in [0, 1] (torch is imported here only).

    Shape:
        - image: :math:`(H, W, 3)`; output: :math:`(3, H, W)`
    """
    import torch

    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    chw *= np.float32(1.0 / 255.0)
    return torch.from_numpy(chw)


def _pair_folder(blur_dir: Path, sharp_dir: Path) -> list[tuple[Path, Path]]:
    blur = {p.stem: p for p in list_images(blur_dir)}
    sharp = {p.stem: p for p in list_images(sharp_dir)}
    only_blur, only_sharp = sorted(set(blur) - set(sharp)), sorted(set(sharp) - set(blur))
    if only_blur or only_sharp:

        def few(names: list[str]) -> str:
            return ", ".join(names[:5]) + (f" … ({len(names)} in all)" if len(names) > 5 else "")

        parts = []
        if only_blur:
            parts.append(f"{len(only_blur)} in {blur_dir} have no sharp twin: {few(only_blur)}")
        if only_sharp:
            parts.append(f"{len(only_sharp)} in {sharp_dir} have no blur twin: {few(only_sharp)}")
        raise DatasetError("image names do not match; " + "; ".join(parts))
    return [(blur[name], sharp[name]) for name in sorted(blur)]


def find_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """Every (blurred, sharp) file pair under ``root``, in either layout.

    Raises:
        DatasetError: no layout matches, a folder is empty, or names do not pair up.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root is not a folder: {root}")
    if (root / "blur").is_dir() or (root / "sharp").is_dir():
        return _pair_folder(root / "blur", root / "sharp")
    sequences = sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and ((d / "blur").is_dir() or (d / "sharp").is_dir())
    )
    if not sequences:
        raise DatasetError(
            f"no pairs under {root}: expected '{root}/blur' + '{root}/sharp' (flat) or "
            f"'{root}/*/blur' + '{root}/*/sharp' (GoPro layout)"
        )
    pairs = []
    for seq in sequences:
        pairs += _pair_folder(seq / "blur", seq / "sharp")
    return pairs


class PairedFolderDataset:
    """Blurred/sharp pairs from a folder, as a map-style dataset for ``torch.utils.data``.

    Items are ``{"blur": tensor, "sharp": tensor}``, float32 ``3 × H × W`` in [0, 1]. With a
    crop, both images get the same random window (reflection-padded if an image is smaller)
    and the same flip/rotation; every random choice comes from
    :func:`~training.data.augment.item_rng`, so an item depends only on (seed, epoch, index).

    Args:
        root: the dataset folder (GoPro or flat layout, see the module docs).
        crop: side of the square training crop, ``(height, width)``, or None for whole images
            (and no flips or rotations).
        seed: base seed.
        flips: random left-right flips (with half turns, also up-down).
        rotations: random 90° rotations (half turns only for non-square crops).
        epoch: the epoch the first iteration sees (see :meth:`set_epoch`).

    Raises:
        DatasetError: see :func:`find_pairs`.
    """

    def __init__(
        self,
        root: str | Path,
        crop: int | Sequence[int] | None = 256,
        seed: int = 0,
        *,
        flips: bool = True,
        rotations: bool = True,
        epoch: int = 0,
    ) -> None:
        self.root = Path(root)
        self.pairs = find_pairs(self.root)
        if crop is None:
            self.crop = None
        else:
            self.crop = crop_size(crop)
        self.seed, self.epoch = int(seed), int(epoch)
        self.flips, self.rotations = flips, rotations

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and flips the next items use.

        Call it before creating the epoch's DataLoader iterator: workers get a copy of the
        dataset when the iterator starts, so with ``persistent_workers=True`` a later call does
        not reach them.
        """
        self.epoch = int(epoch)

    def name(self, index: int) -> str:
        """A readable name of pair ``index``: the path of its blurred file under the root."""
        return self.pairs[index][0].relative_to(self.root).as_posix()

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole pair as uint8 RGB frames.

        Raises:
            DatasetError: a file cannot be read, or the two sizes differ (the pair is named).
        """
        blur_path, sharp_path = self.pairs[index]
        blur, sharp = read_rgb(blur_path), read_rgb(sharp_path)
        if blur.shape != sharp.shape:
            raise DatasetError(
                f"sizes differ: {blur_path} is {blur.shape[1]}x{blur.shape[0]}, "
                f"{sharp_path} is {sharp.shape[1]}x{sharp.shape[0]}"
            )
        return blur, sharp

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``index`` as uint8 RGB frames, cropped and augmented as the tensors are."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        blur, sharp = self.load_pair(index)
        if self.crop is None:
            return blur, sharp
        rng = item_rng(self.seed, self.epoch, index)
        top, left = random_crop_origin(rng, *blur.shape[:2], self.crop)
        blur = reflect_crop(blur, top, left, *self.crop)
        sharp = reflect_crop(sharp, top, left, *self.crop)
        code = random_dihedral_code(
            rng, square=self.crop[0] == self.crop[1], flips=self.flips, rotations=self.rotations
        )
        return dihedral(blur, code), dihedral(sharp, code)

    def __getitem__(self, index: int) -> dict[str, Any]:
        blur, sharp = self.sample(index)
        return {"blur": image_to_tensor(blur), "sharp": image_to_tensor(sharp)}
