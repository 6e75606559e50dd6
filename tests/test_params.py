"""Typed parameters: the real iteration files load; every mistake is a GfrError naming the key and the file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PARAMS_DIR, TEST_PARAMS
from gfr.errors import GfrError
from gfr.params import NATIVE_SIZE, Params, known_iterations, load_params


@pytest.fixture
def pdir(tmp_path) -> Path:
    """A private copy of params/ that a test may edit."""
    out = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, out)
    return out


def edit(path: Path, change) -> None:
    """Load a YAML file, let `change` mutate the dict, write it back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def expect_error(*parts, **kwargs) -> GfrError:
    with pytest.raises(GfrError) as info:
        load_params(**kwargs)
    for part in parts:
        assert str(part) in str(info.value), f"{part!r} not in {info.value}"
    return info.value


# ---- the real files ------------------------------------------------------------------------------

def test_known_iterations_include_the_study_and_all_load():
    known = known_iterations()
    assert known[:3] == [1, 2, 3]
    for iteration in known:
        assert load_params(iteration).iteration == iteration


@pytest.mark.parametrize(
    "iteration, size, native, epochs",
    [(1, (128, 128), False, 20), (2, (128, 128), False, 50), (3, NATIVE_SIZE, True, 20)],
)
def test_real_iterations_load(iteration, size, native, epochs):
    p = load_params(iteration)
    assert isinstance(p, Params)
    assert (p.iteration, p.image_size, p.native_input, p.epochs) == (iteration, size, native, epochs)
    assert p.weights == "imagenet" and p.seed == 1024
    assert p.head.seeds[0] == 1024 and len(p.head.seeds) == 5
    assert (p.data.test_fraction, p.data.val_fraction, p.data.on_bad_image) == (0.2, 0.2, "stop")
    assert p.sources[0].endswith("base.yaml") and p.sources[1].endswith(f"it{iteration}.yaml")


def test_iteration_3_keeps_native_size_and_none_input():
    p = load_params(3)
    assert p.input_size is None and p.image_size == (218, 178)


def test_test_yaml_reduces_and_overrides_merge_nested():
    p = load_params(1, {"head": {"dense_units": 3}}, extra=[TEST_PARAMS])
    assert p.weights == "none" and p.epochs == 1 and p.image_size == (48, 48)
    assert p.head.dense_units == 3  # the override
    assert p.head.learning_rate == 0.001  # kept from base.yaml under the nested merge
    assert p.sources[-1] == "overrides" and str(TEST_PARAMS) in p.sources


def test_as_dict_has_no_sources_and_round_trips(tmp_path):
    p = load_params(2)
    d = p.as_dict()
    assert "sources" not in d
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump(d))
    assert load_params(2, extra=[dump]) == p


# ---- mistakes ------------------------------------------------------------------------------------

def test_unknown_top_level_key_names_key_and_file(pdir):
    edit(pdir / "it1.yaml", lambda d: d.update(epoch=3))
    expect_error("unknown key 'epoch'", pdir / "it1.yaml", iteration=1, params_dir=pdir)


def test_unknown_nested_key_names_dotted_key(pdir):
    edit(pdir / "base.yaml", lambda d: d["data"].update(test_fration=0.3))
    expect_error("unknown key 'data.test_fration'", pdir / "base.yaml", iteration=1, params_dir=pdir)


def test_missing_key_names_key_and_file(pdir):
    edit(pdir / "it2.yaml", lambda d: d.pop("epochs"))
    expect_error("missing key 'epochs'", pdir / "it2.yaml", iteration=2, params_dir=pdir)


def test_missing_nested_key(pdir):
    edit(pdir / "base.yaml", lambda d: d["head"].pop("learning_rate"))
    expect_error("missing key 'head.learning_rate'", pdir / "base.yaml", iteration=1, params_dir=pdir)


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda d: d.update(epochs="twenty"), "'epochs' must be int"),
        (lambda d: d.update(epochs=True), "'epochs' must be int"),  # a bool is not an int here
        (lambda d: d.update(epochs=2.5), "'epochs' must be int"),
        (lambda d: d.update(input_size="128x128"), "'input_size'"),
        (lambda d: d.update(input_size=[128, "x"]), "'input_size[1]'"),
        (lambda d: d.update(description="typed"), "'description'"),  # generated from the parameters, not typed
        (lambda d: d.update(data=[1, 2]), "'data' must be a mapping"),
        (lambda d: d.update(head={"seeds": "1024"}), "'head.seeds' must be a list"),
    ],
)
def test_wrong_type_names_key_and_file(pdir, change, key):
    edit(pdir / "it1.yaml", change)
    expect_error(key, pdir / "it1.yaml", iteration=1, params_dir=pdir)


def test_wrong_nested_type(pdir):
    edit(pdir / "base.yaml", lambda d: d["head"].update(seeds=[1024, "x"]))
    expect_error("'head.seeds[1]' must be int", pdir / "base.yaml", iteration=1, params_dir=pdir)


def test_int_accepted_where_float_expected():
    p = load_params(1, {"head": {"learning_rate": 1}})
    assert p.head.learning_rate == 1.0 and isinstance(p.head.learning_rate, float)


@pytest.mark.parametrize("epochs", [0, -1, -20])
def test_non_positive_epochs(pdir, epochs):
    edit(pdir / "it1.yaml", lambda d: d.update(epochs=epochs))
    expect_error("'epochs' must be at least 1", str(epochs), pdir / "it1.yaml", iteration=1, params_dir=pdir)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"test_fraction": 0.6, "val_fraction": 0.5}, "data.val_fraction"),  # sum >= 1
        ({"test_fraction": 0.5, "val_fraction": 0.5}, "data.val_fraction"),
        ({"test_fraction": 1.5}, "data.test_fraction"),
        ({"test_fraction": 0.0}, "data.test_fraction"),
        ({"val_fraction": -0.1}, "data.val_fraction"),
        ({"subset": 3}, "data.subset"),
        ({"on_bad_image": "ignore"}, "data.on_bad_image"),
    ],
)
def test_impossible_data_values(pdir, data, key):
    edit(pdir / "base.yaml", lambda d: d["data"].update(data))
    expect_error(f"'{key}'", pdir / "base.yaml", iteration=1, params_dir=pdir)


@pytest.mark.parametrize(
    "over, key",
    [
        ({"input_size": [16, 16]}, "input_size"),
        ({"input_size": [128, 128, 3]}, "input_size"),
        ({"head": {"seeds": []}}, "head.seeds"),
        ({"head": {"dense_units": 0}}, "head"),
        ({"feature_batch_size": 0}, "feature_batch_size"),
        ({"timing": {"repeats": 0}}, "timing"),
        ({"iteration": 2}, "iteration"),
    ],
)
def test_bad_overrides(over, key):
    expect_error(f"'{key}'", "overrides", iteration=1, overrides=over)


@pytest.mark.parametrize("iteration", [0, 99, "x"])
def test_unknown_iteration(iteration):
    err = expect_error("unknown iteration", f"it{iteration}.yaml", iteration=iteration)
    assert str(known_iterations()) in str(err)  # lists the known ones


@pytest.mark.parametrize(
    "text, why",
    [
        ("epochs: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("[]\n", "must hold a mapping"),
        ("just a string\n", "must hold a mapping"),
        ("[" * 5000, "not valid YAML"),
    ],
)
def test_bad_extra_file(tmp_path, text, why):
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    expect_error(why, path, iteration=1, extra=[path])


def test_non_utf8_extra_file(tmp_path):
    path = tmp_path / "extra.yaml"
    path.write_bytes(b"epochs: \xff\xfe\n")
    expect_error("not UTF-8", path, iteration=1, extra=[path])


def test_missing_extra_file(tmp_path):
    expect_error("not found", tmp_path / "nope.yaml", iteration=1, extra=[tmp_path / "nope.yaml"])


def test_empty_extra_file_adds_nothing(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_params(1, extra=[path]) == load_params(1)


# ---- property-based ------------------------------------------------------------------------------

valid_values = st.fixed_dictionaries(
    {
        "epochs": st.integers(1, 10_000),
        "seed": st.integers(0, 2**32 - 1),
        "feature_batch_size": st.integers(1, 4096),
        "input_size": st.none() | st.lists(st.integers(32, 4096), min_size=2, max_size=2),
        "data": st.fixed_dictionaries(
            {
                "subset": st.none() | st.integers(10, 10**7),
                "test_fraction": st.floats(0.01, 0.45),
                "val_fraction": st.floats(0.01, 0.45),
                "official_partition": st.booleans(),
                "on_bad_image": st.sampled_from(["stop", "exclude"]),
            }
        ),
        "head": st.fixed_dictionaries(
            {
                "dense_units": st.integers(1, 4096),
                "learning_rate": st.floats(1e-8, 10.0) | st.integers(1, 10),
                "batch_size": st.integers(1, 4096),
                "seeds": st.lists(st.integers(0, 2**31), min_size=1, max_size=6),
            }
        ),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=valid_values)
def test_valid_values_round_trip(values):
    p = load_params(1, values)
    assert p.epochs == values["epochs"] and p.seed == values["seed"]
    assert p.input_size == values["input_size"]
    assert f"{p.epochs} epochs" in p.description
    assert p.data.test_fraction == values["data"]["test_fraction"]
    assert p.data.subset == values["data"]["subset"]
    assert p.head.seeds == values["head"]["seeds"]
    assert p.head.learning_rate == float(values["head"]["learning_rate"])
    # Written out as YAML and read back as a params file, the same parameters come back.
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "dump.yaml"
        dump.write_text(yaml.safe_dump(p.as_dict(), allow_unicode=True), encoding="utf-8")
        assert load_params(1, extra=[dump]) == p


anything = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
key_paths = st.sampled_from(
    ["epochs", "seed", "input_size", "weights", "description", "feature_batch_size", "iteration", "finetune",
     "data", "data.subset", "data.test_fraction", "data.val_fraction", "data.official_partition",
     "data.on_bad_image", "head", "head.seeds", "head.dense_units", "head.learning_rate", "head.batch_size",
     "timing", "timing.warmup", "timing.repeats", "sources", "bogus", "data.bogus"]
) | st.text(min_size=1, max_size=6)


def nest(path: str, value) -> dict:
    out = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


@settings(max_examples=150, deadline=None)
@given(overrides=st.lists(st.tuples(key_paths, anything), min_size=1, max_size=3))
def test_arbitrary_overrides_load_or_raise_gfr_error(overrides):
    merged: dict = {}
    for path, value in overrides:
        merged.update(nest(path, value))
    try:
        p = load_params(1, merged)
    except GfrError as exc:
        assert str(exc)  # a message, never another exception type
    else:
        assert isinstance(p, Params) and p.epochs >= 1


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_file_contents_load_or_raise_gfr_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "extra.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        try:
            load_params(1, extra=[path])
        except GfrError as exc:
            assert str(path) in str(exc) or "key" in str(exc)
