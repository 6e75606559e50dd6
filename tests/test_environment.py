"""The pinned environment: pyproject.toml and requirements/*.txt agree, the locks' shape, what a run records."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from gfr import environment as env
from gfr.paths import PROJECT_ROOT
from gfr.study import artefacts, hardware, verify


def test_pyproject_and_the_locks_agree():
    assert env.check_pyproject() == [], "pyproject.toml and requirements/ disagree: run `make lock`"


@pytest.fixture
def project(tmp_path):
    """A copy of pyproject.toml and requirements/ to doctor."""
    shutil.copy(env.PYPROJECT, tmp_path / "pyproject.toml")
    shutil.copytree(env.LOCK_DIR, tmp_path / "requirements")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_dependency_added_to_pyproject_alone_is_caught(project):
    _edit(project / "pyproject.toml", '"tqdm>=4.66",', '"tqdm>=4.66",\n    "rich>=13",')  # rich is locked, not via gfr
    _edit(project / "pyproject.toml", 'ray = ["ray==2.60.0"]', 'ray = ["ray==2.60.0", "not-a-locked-package>=1"]')
    problems = env.check_pyproject(project / "pyproject.toml", project / "requirements")
    assert any(p.startswith("base.txt: ") and "rich" in p for p in problems)
    assert any(p.startswith("ray.txt: not-a-locked-package>=1 is in pyproject.toml but not in the lock") for p in problems)
    assert any(p.startswith("all.txt: ") and "not-a-locked-package" in p for p in problems)


def test_a_dependency_removed_from_pyproject_or_the_lock_is_caught(project):
    _edit(project / "pyproject.toml", '    "tqdm>=4.66",\n', "")
    problems = env.check_pyproject(project / "pyproject.toml", project / "requirements")
    assert "base.txt: tqdm==4.70.1 came from pyproject.toml, which no longer asks for it" in problems
    shutil.copy(env.PYPROJECT, project / "pyproject.toml")
    peers = project / "requirements" / "peers.txt"
    peers.write_text(re.sub(r"(?ms)^onnxruntime==.*?(?=^\S|\Z)", "", peers.read_text()))
    problems = env.check_pyproject(project / "pyproject.toml", project / "requirements")
    assert problems == ["peers.txt: onnxruntime<1.31,>=1.23 is in pyproject.toml but not in the lock"]


def test_a_pin_outside_pyproject_specifier_or_an_unlocked_extra_is_caught(project):
    _edit(project / "pyproject.toml", '"keras==3.15.1"', '"keras==3.14.0"')
    _edit(project / "pyproject.toml", "[project.scripts]", 'extra-thing = ["rich"]\n\n[project.scripts]')
    problems = env.check_pyproject(project / "pyproject.toml", project / "requirements")
    assert "base.txt: pins keras==3.15.1, pyproject.toml asks for keras==3.14.0" in problems
    assert any(p.startswith("extra [extra-thing] of pyproject.toml has no lock") for p in problems)


def test_the_locks_are_hashed_disjoint_overlays_drawn_from_one_resolution():
    every = env.read_lock(env.LOCK_DIR / env.ALL)
    seen = {}
    for path in env.lock_paths():
        pins = env.read_lock(path)
        assert pins, path
        text = path.read_text()
        assert env.PLATFORMS in text  # the header says what it covers
        for name, pin in pins.items():
            assert "--hash=sha256:" in pin.text, f"{path.name}: {name} has no hash"
            assert every[name].version == pin.version, f"{path.name}: {name} differs from all.txt"
            assert name not in seen, f"{name} in both {seen.get(name)} and {path.name}"
            seen[name] = path.name
    assert set(seen) == set(every)  # all.txt is exactly the union
    assert env.read_lock(env.LOCK_DIR / "base.txt")["keras"].via == [env.VIA_PYPROJECT, "tensorflow-cpu"]


def test_describe_names_the_locks_an_environment_matches():
    base = env.pinned([env.LOCK_DIR / "base.txt"])
    ray = env.pinned([env.LOCK_DIR / "ray.txt"])
    info = env.describe(packages={**base, **ray})
    assert info["lock"] == "base.txt + ray.txt" and len(info["lock_sha256"]) == 64
    assert "lock_differences" not in info
    changed = {**base, "numpy": "0.0.1", "extra-package": "1.0"}
    changed.pop("tqdm")
    info = env.describe(packages=changed)
    assert info["lock"] == "none" and info["lock_sha256"] is None
    assert info["lock_differences"] == ["extra-package 1.0 installed, not locked",
                                        f"numpy 0.0.1 installed, {base['numpy']} locked",
                                        f"tqdm {base['tqdm']} locked, not installed"]
    assert env.describe(packages=changed)["packages_sha256"] == info["packages_sha256"] != \
        env.describe(packages=base)["packages_sha256"]


def test_installed_reads_site_packages_only(tmp_path, monkeypatch):
    """A package's vendored copies on sys.path (Ray's thirdparty_files) are not installed distributions."""
    info = tmp_path / "vendored_thing-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vendored-thing\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib import metadata

    assert "vendored-thing" in {d.metadata["Name"] for d in metadata.distributions()}
    packages = env.installed()
    assert "vendored-thing" not in packages and "keras" in packages and "gfr" not in packages


@pytest.mark.skipif(not os.environ.get("GFR_EXPECT_LOCKS"), reason="GFR_EXPECT_LOCKS (set by .ci/run) not set")
def test_the_installed_packages_are_exactly_the_locked_ones():
    locks = [env.LOCK_DIR / name for name in os.environ["GFR_EXPECT_LOCKS"].split()]
    assert env.differences(env.installed(), env.pinned(locks)) == []
    assert hardware.environment()["environment_lock"] == " + ".join(p.name for p in locks)


def _run(root: Path, name: str, hw: dict) -> None:
    (root / name).mkdir(parents=True)
    artefacts.write_manifest(root / name, {"run": name, "status": "ok", "hardware": hw})


def test_verify_says_whether_the_environment_is_the_committed_runs_one(tmp_path):
    here = hardware.environment()
    assert set(here) >= {"environment_lock", "environment_lock_sha256", "environment_packages_sha256"}
    _run(tmp_path, "Old-it1", {"cpu": "x"})
    note = verify.environment_note(tmp_path, ["Old-it1", "Absent-it1"], here)
    assert "1 committed run(s) predate the locks and record no environment, so for them it cannot be said" in note
    _run(tmp_path, "Same-it1", {**here})
    note = verify.environment_note(tmp_path, ["Old-it1", "Same-it1"], here)
    assert note.startswith("environment: the same as the committed runs' (1 runs)") and "predate" in note
    other = {**here, "environment_lock": "base.txt", "environment_packages_sha256": "ab" * 32}
    _run(tmp_path, "Other-it1", other)
    note = verify.environment_note(tmp_path, ["Same-it1", "Other-it1"], here)
    assert note.startswith("environment DIFFERS from the committed runs': 1 run(s) on base.txt (packages sha256 "
                           "abababababab, e.g. Other-it1)")
    assert json.loads((tmp_path / "Same-it1" / artefacts.MANIFEST).read_text())["hardware"] == here


def test_setup_installs_the_locks_with_hashes_and_gfr_without_dependencies():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes $(LOCKS:%=-r %)" in makefile
    assert "pip install -q --no-deps --no-build-isolation -e ." in makefile
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "make setup" in ci and "pip install -e" not in ci
    assert "-r requirements/base.txt" in (PROJECT_ROOT / "environment.yml").read_text()
