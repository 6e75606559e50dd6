"""Typed run parameters loaded from params/*.yaml (a shared base plus one file per iteration)."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gfr.errors import GfrError
from gfr.paths import PARAMS_DIR

OVERRIDES = "overrides"  # in Params.sources: values given besides the files (command-line options)
NATIVE_SIZE = (218, 178)  # CelebA aligned images: height x width


@dataclass(frozen=True)
class DataParams:
    subset: int | None
    test_fraction: float
    val_fraction: float
    official_partition: bool
    on_bad_image: str


@dataclass(frozen=True)
class HeadParams:
    dense_units: int
    learning_rate: float
    batch_size: int
    seeds: list[int]


@dataclass(frozen=True)
class TimingParams:
    warmup: int
    repeats: int
    batch_size: int


@dataclass(frozen=True)
class FinetuneParams:
    boundary: str | None  # layer whose output is cached; the layers above it are trained (null: registry's)
    learning_rate: float
    epochs: int
    batch_size: int
    augment: bool
    dropout: float = 0.0  # on the pooled features, during fine-tuning only


@dataclass(frozen=True)
class AugmentParams:
    """Photo-like augmented copies of the training images (`gfr.data.augment`); each bound is a +- range."""

    copies: int            # augmented copies of each training image, added to the plain ones
    mirror: float          # probability of a horizontal mirror
    rotation_deg: float
    scale: float           # scale factor within [1 / (1 + scale), 1 + scale] (log-uniform)
    shift: float           # fraction of the width (x) and the height (y)
    brightness: float
    contrast: float
    saturation: float
    grayscale: float       # probability of a black-and-white image
    tight_crop: float = 0.0  # probability of keeping only a box around the face, edge pixels repeated outside it
    tight_crop_margin: float = 0.5  # that box: CelebA's face box grown by a random fraction up to this


@dataclass(frozen=True)
class Params:
    iteration: int
    seed: int
    input_size: list[int] | None
    epochs: int
    weights: str
    feature_batch_size: int
    data: DataParams
    head: HeadParams
    timing: TimingParams
    finetune: FinetuneParams | None = None
    augment: AugmentParams | None = None
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) fed to the network: `input_size`, or CelebA's native 218x178."""
        return tuple(self.input_size) if self.input_size else NATIVE_SIZE

    @property
    def native_input(self) -> bool:
        """True when the model keeps Keras's default (None x None) input shape."""
        return self.input_size is None

    @property
    def description(self) -> str:
        """What the iteration does, in words generated from its parameters (never typed)."""
        h, w = self.image_size
        size = f"CelebA's {h}x{w} (HxW) images, not resized" if self.native_input else f"images resized to {h}x{w}"
        text = f"{size}, {self.epochs} epochs"
        if self.finetune is not None:
            text += (f" (head warm-up), then the top block(s) fine-tuned for {self.finetune.epochs} epochs"
                     + (", mirrored images" if self.finetune.augment else ""))
        if self.augment is not None:
            a = self.augment
            text += (f", head trained on the images plus {a.copies} photo-like augmented copies of each (mirror, "
                     f"rotation +-{a.rotation_deg:g} deg, scale +-{a.scale:.0%}, shift +-{a.shift:.0%}, colour, "
                     f"{a.grayscale:.0%} grayscale"
                     + (f", {a.tight_crop:.0%} tight face crops" if a.tight_crop else "") + ")")
        return text

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("sources")
        if out["augment"] is None:  # records of iterations without augmentation stay as they were
            out.pop("augment")
        return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value, tp, key: str, where: str):
    """Check `value` against the annotation `tp`; return it (ints are accepted where floats are)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, where)
            except GfrError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise GfrError(f"{where}: key '{key}' must be a list, got {type(value).__name__} {value!r}")
        return [_coerce(v, item_type, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise GfrError(f"{where}: key '{key}' must be a mapping, got {type(value).__name__} {value!r}")
        return _build(tp, value, where, prefix=f"{key}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise GfrError(f"{where}: key '{key}' must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _build(cls, data: dict, where: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "sources"]
    for key in data:
        if key not in names:
            raise GfrError(f"{where}: unknown key '{prefix}{key}'")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "sources":
            continue
        if f.name not in data:
            if f.default is not dataclasses.MISSING:
                continue
            raise GfrError(f"{where}: missing key '{prefix}{f.name}'")
        values[f.name] = _coerce(data[f.name], hints[f.name], prefix + f.name, where)
    return cls(**values)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise GfrError(f"{path}: parameter file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise GfrError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise GfrError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise GfrError(f"{path}: not valid YAML (nested too deeply)") from None
    if data is None:  # an empty file (or only comments) adds nothing
        return {}
    if not isinstance(data, dict):
        raise GfrError(f"{path}: must hold a mapping of keys, got {type(data).__name__}")
    return data


def _check_values(p: Params, where: str) -> None:
    def bad(key, why):
        raise GfrError(f"{where}: key '{key}' {why}")

    if p.epochs < 1:
        bad("epochs", f"must be at least 1, got {p.epochs}")
    if p.input_size is not None and (len(p.input_size) != 2 or min(p.input_size) < 32):
        bad("input_size", f"must be [height, width] with both >= 32, or null, got {p.input_size}")
    d = p.data
    for key, frac in (("data.test_fraction", d.test_fraction), ("data.val_fraction", d.val_fraction)):
        if not 0.0 < frac < 1.0:
            bad(key, f"must be between 0 and 1, got {frac}")
    if d.test_fraction + d.val_fraction >= 1.0:
        bad("data.val_fraction", f"plus data.test_fraction must be below 1, got {d.test_fraction + d.val_fraction}")
    if d.subset is not None and d.subset < 10:
        bad("data.subset", f"must be at least 10 or null, got {d.subset}")
    if d.on_bad_image not in ("stop", "exclude"):
        bad("data.on_bad_image", f"must be 'stop' or 'exclude', got {d.on_bad_image!r}")
    h = p.head
    if h.dense_units < 1 or h.batch_size < 1 or h.learning_rate <= 0:
        bad("head", "needs dense_units >= 1, batch_size >= 1 and learning_rate > 0")
    if not h.seeds:
        bad("head.seeds", "must list at least one seed")
    if p.feature_batch_size < 1:
        bad("feature_batch_size", f"must be at least 1, got {p.feature_batch_size}")
    if p.timing.repeats < 1 or p.timing.warmup < 0 or p.timing.batch_size < 1:
        bad("timing", "needs repeats >= 1, warmup >= 0 and batch_size >= 1")
    if p.finetune is not None and (p.finetune.epochs < 1 or p.finetune.learning_rate <= 0):
        bad("finetune", "needs epochs >= 1 and learning_rate > 0")
    a = p.augment
    if a is not None:
        if a.copies < 1:
            bad("augment.copies", f"must be at least 1, got {a.copies}")
        for key in ("mirror", "grayscale", "tight_crop"):
            if not 0.0 <= getattr(a, key) <= 1.0:
                bad(f"augment.{key}", f"is a probability (0 to 1), got {getattr(a, key)}")
        for key in ("rotation_deg", "scale", "shift", "brightness", "contrast", "saturation", "tight_crop_margin"):
            if not 0.0 <= getattr(a, key) < (45.0 if key == "rotation_deg" else 1.0):
                bad(f"augment.{key}", f"must be >= 0 and small (below {45 if key == 'rotation_deg' else 1}), "
                                      f"got {getattr(a, key)}")
        if p.finetune is not None:
            bad("augment", "applies to head-only iterations (fine-tuning has its own `finetune.augment`)")


def iteration_file(iteration: int, params_dir: Path = PARAMS_DIR) -> Path:
    """The YAML file of one iteration; a clear error for an unknown iteration."""
    path = Path(params_dir) / f"it{iteration}.yaml"
    if not path.is_file():
        raise GfrError(f"unknown iteration {iteration!r}: no {path} (known: {known_iterations(params_dir)})")
    return path


def load_params(
    iteration: int,
    overrides: dict | None = None,
    params_dir: str | os.PathLike = PARAMS_DIR,
    extra: list[str | os.PathLike] | None = None,
) -> Params:
    """Merge base.yaml, it<iteration>.yaml, any `extra` files and `overrides` into typed Params."""
    params_dir = Path(params_dir)
    files = [params_dir / "base.yaml", iteration_file(iteration, params_dir)] + [Path(e) for e in extra or []]
    merged: dict = {}
    for path in files:
        merged = _merge(merged, _read_yaml(path))
    sources = [str(f) for f in files]
    if overrides:
        merged = _merge(merged, overrides)
        sources.append(OVERRIDES)
    where = " + ".join(sources)
    params = _build(Params, merged, where)
    _check_values(params, where)
    if params.iteration != iteration:
        raise GfrError(f"{where}: key 'iteration' is {params.iteration}, expected {iteration}")
    return dataclasses.replace(params, sources=tuple(sources))


def known_iterations(params_dir: str | os.PathLike = PARAMS_DIR) -> list[int]:
    """Iterations that have a params file."""
    return sorted(int(p.stem[2:]) for p in Path(params_dir).glob("it*.yaml") if p.stem[2:].isdigit())
