"""The pinned environment: the lock files under requirements/, how they are made, and what is installed.

Every lock is made by uv (`make lock`) from pyproject.toml, with hashes, for CPython 3.11 on Linux x86-64
(manylinux_2_28: glibc 2.28 or newer). `base.txt` is the default set-up (gfr's dependencies + the `tensorflow`,
`notebooks` and `test` extras); each overlay adds one extra on top of it and lists only the packages that
base.txt lacks: `gpu.txt` (`make setup GPU=1`), `ray.txt` (`ENGINE=ray`), `peers.txt` (`PEERS=1`). Every lock is
drawn from one resolution of all of them together (`all.txt`, used as uv's constraints), so a package has the
same version in every set-up and overlays combine. `make setup` installs base.txt and the chosen overlays with
`pip install --require-hashes`, then gfr itself without dependencies.

Run manifests record which locks the installed packages match and their hash (`hardware.describe()`), and
`gfr verify` says when that differs from the committed runs'. Standard library only, apart from `packaging`
for the pyproject check, so that `make lock` runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gfr.paths import PROJECT_ROOT

LOCK_DIR = PROJECT_ROOT / "requirements"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
PLATFORMS = f"CPython {PYTHON_VERSION} on Linux x86-64 (manylinux_2_28: glibc 2.28 or newer)"
BASE = "base.txt"
BASE_EXTRAS = ("tensorflow", "notebooks", "test")
OVERLAYS = {"gpu.txt": "gpu", "ray.txt": "ray", "peers.txt": "peers"}  # lock file -> the extra it adds
ALL = "all.txt"  # the union's resolution: the constraints every lock is drawn from (never installed by itself)
TOOLS = {"pip.txt": "pip", "uv.txt": "uv"}  # pip for `make setup`, uv for `make lock`: locked alone
UNLOCKED_EXTRAS = {"bench": "benchmark-only backends (jax, torch), installed by hand: `pip install -e .[bench]`"}
NOT_INSTALLED = {"gfr", "pip"}  # installed apart from the locks (gfr editable, pip from requirements/pip.txt)
VIA_PYPROJECT = "gfr (pyproject.toml)"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)")


def canonical(name: str) -> str:
    """A distribution's normalised name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Pin:
    version: str
    via: list[str] = field(default_factory=list)
    text: str = ""  # the lock's whole entry (pin, hashes, comments)


def read_lock(path: str | Path) -> dict[str, Pin]:
    """A lock file's pins by canonical name: version, what pulled each in (uv's `# via` lines) and its text."""
    pins: dict[str, Pin] = {}
    current = None
    for line in Path(path).read_text().splitlines(keepends=True):
        m = _PIN.match(line)
        if m:
            current = pins[canonical(m.group(1))] = Pin(m.group(3), text=line)
            continue
        if not line.startswith((" ", "\t")):
            current = None
        if current is None:
            continue
        current.text += line
        comment = line.strip()
        if comment.startswith("#"):
            via = comment.lstrip("#").strip()
            via = via[len("via"):].strip() if via.startswith("via") else via
            if via:
                current.via.append(via)
    return pins


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lock_paths(lock_dir: str | Path = LOCK_DIR) -> list[Path]:
    """The installable locks: base.txt, then the overlays."""
    return [Path(lock_dir) / name for name in (BASE, *OVERLAYS)]


def pinned(paths) -> dict[str, str]:
    """name -> version of the union of some locks."""
    out = {}
    for path in paths:
        out.update({name: pin.version for name, pin in read_lock(path).items()})
    return out


# ---- pyproject.toml and the locks ------------------------------------------------------------------------

def _requirements(pyproject: str | Path) -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    return project.get("dependencies", []), project.get("optional-dependencies", {})


def check_pyproject(pyproject: str | Path = PYPROJECT, lock_dir: str | Path = LOCK_DIR) -> list[str]:
    """Where pyproject.toml and the locks disagree (empty: they agree). Each lock's packages that came from
    pyproject.toml (uv's `# via gfr (pyproject.toml)`) must be exactly the dependencies of its set-up, each pinned
    at a version its specifier allows; every extra is locked or named in UNLOCKED_EXTRAS."""
    from packaging.requirements import Requirement

    main, extras = _requirements(pyproject)
    lock_dir = Path(lock_dir)
    problems = []
    for extra in sorted(set(extras) - set(BASE_EXTRAS) - set(OVERLAYS.values()) - set(UNLOCKED_EXTRAS)):
        problems.append(f"extra [{extra}] of pyproject.toml has no lock (add it to gfr/environment.py's OVERLAYS)")
    base_pins = read_lock(lock_dir / BASE) if (lock_dir / BASE).is_file() else {}
    setups = [(BASE, main + [r for e in BASE_EXTRAS for r in extras.get(e, [])], {})]
    setups += [(name, extras.get(extra, []), base_pins) for name, extra in OVERLAYS.items()]
    union = main + [r for e, reqs in extras.items() if e not in UNLOCKED_EXTRAS for r in reqs]
    setups.append((ALL, union, {}))
    for name, reqs, underneath in setups:
        path = lock_dir / name
        if not path.is_file():
            problems.append(f"{name}: no such lock (make lock)")
            continue
        pins = read_lock(path)
        wanted = {}
        for text in reqs:
            req = Requirement(text)
            wanted[canonical(req.name)] = req
        for pkg, req in sorted(wanted.items()):
            pin = pins.get(pkg) or underneath.get(pkg)
            if pin is None:
                problems.append(f"{name}: {req} is in pyproject.toml but not in the lock")
            elif not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{name}: pins {pkg}=={pin.version}, pyproject.toml asks for {req}")
            elif pkg in pins and VIA_PYPROJECT not in pin.via:  # (an overlay's package already in base.txt: as is)
                problems.append(f"{name}: {req} is in pyproject.toml, the lock has {pkg} only as a dependency of "
                                f"{', '.join(pin.via)}")
        for pkg, pin in sorted(pins.items()):
            if VIA_PYPROJECT in pin.via and pkg not in wanted:
                problems.append(f"{name}: {pkg}=={pin.version} came from pyproject.toml, which no longer asks for it")
    return problems


# ---- what is installed -----------------------------------------------------------------------------------

def installed() -> dict[str, str]:
    """name -> version of every distribution installed in this interpreter's site-packages (gfr and pip left
    out). Only there: a package may put its vendored copies on sys.path (Ray's thirdparty_files: colorama)."""
    import sysconfig
    from importlib import metadata

    out = {}
    site = list(dict.fromkeys(sysconfig.get_path(key) for key in ("purelib", "platlib")))
    for dist in metadata.distributions(path=site):
        name = dist.metadata["Name"]
        if name and canonical(name) not in NOT_INSTALLED:
            out[canonical(name)] = dist.version
    return out


def differences(have: dict[str, str], want: dict[str, str], limit: int | None = None) -> list[str]:
    """`have` against `want`, one phrase per package: missing, extra, or another version."""
    out = []
    for name in sorted(set(have) | set(want)):
        if name not in have:
            out.append(f"{name} {want[name]} locked, not installed")
        elif name not in want:
            out.append(f"{name} {have[name]} installed, not locked")
        elif have[name] != want[name]:
            out.append(f"{name} {have[name]} installed, {want[name]} locked")
    return out if limit is None or len(out) <= limit else out[:limit] + [f"... {len(out) - limit} more"]


def describe(lock_dir: str | Path = LOCK_DIR, packages: dict[str, str] | None = None) -> dict:
    """The installed environment against the locks: `lock` (the locks it matches exactly, e.g.
    "base.txt + ray.txt", or "none"), `lock_sha256` (of those files, in that order), `packages_sha256` (of the
    sorted name==version list, whatever matches) and, where no lock matches, how it differs from base.txt."""
    packages = installed() if packages is None else packages
    listing = "".join(f"{name}=={version}\n" for name, version in sorted(packages.items()))
    info = {"lock": "none", "lock_sha256": None, "packages": len(packages),
            "packages_sha256": hashlib.sha256(listing.encode()).hexdigest()}
    base, overlays = Path(lock_dir) / BASE, [Path(lock_dir) / name for name in OVERLAYS]
    if not base.is_file():
        info["lock"] = f"none ({base} missing)"
        return info
    versions = {p: {name: pin.version for name, pin in read_lock(p).items()} for p in [base, *overlays] if p.is_file()}
    for k in range(len(overlays) + 1):
        for chosen in itertools.combinations([p for p in overlays if p in versions], k):
            paths = [base, *chosen]
            if {name: v for p in paths for name, v in versions[p].items()} == packages:
                digest = hashlib.sha256("".join(file_sha256(p) for p in paths).encode()).hexdigest()
                info.update(lock=" + ".join(p.name for p in paths), lock_sha256=digest)
                return info
    near = [base] + [p for p in overlays if p in versions and set(versions[p]) & set(packages)]
    info["lock_differences"] = differences(packages, {n: v for p in near for n, v in versions[p].items()}, limit=12)
    return info


def summary(info: dict) -> str:
    """One line: which locks this environment matches, or how it differs."""
    if info.get("lock_sha256"):
        return f"matches requirements/{info['lock']} (lock sha256 {info['lock_sha256'][:12]}, {info['packages']} packages)"
    diffs = info.get("lock_differences") or []
    return (f"matches no lock of requirements/ ({info['packages']} packages, sha256 {info['packages_sha256'][:12]})"
            + (": " + "; ".join(diffs) if diffs else ""))


# ---- making the locks ------------------------------------------------------------------------------------

def _compile(uv: str, extras, out: Path, constraints: Path | None, upgrade: bool, pyproject: Path) -> None:
    cmd = [uv, "pip", "compile", "--quiet", str(pyproject.name), *[f"--extra={e}" for e in extras],
           "--generate-hashes", "--python-version", PYTHON_VERSION, "--python-platform", PYTHON_PLATFORM,
           "--no-header", "--output-file", str(out)]
    if constraints is not None:
        cmd += ["--constraints", str(constraints)]
    if upgrade:
        cmd.append("--upgrade")
    subprocess.run(cmd, check=True, cwd=pyproject.parent)
    out.write_text(re.sub(r"(?m)^ +#   -c \S+\n", "", out.read_text()))  # "via -c all.txt": the constraints, not a source


def _header(name: str, what: str, uv_version: str, source: str = "pyproject.toml") -> str:
    return (f"# requirements/{name}: {what}\n"
            f"# Made by `make lock` (gfr/environment.py: {uv_version}, uv pip compile --generate-hashes) from {source},\n"
            f"# for {PLATFORMS}. Do not edit by hand.\n")


def make_locks(uv: str, lock_dir: str | Path = LOCK_DIR, upgrade: bool = False, pyproject: Path = PYPROJECT) -> list[Path]:
    """(Re)write every lock with uv. Pins already in the locks are kept where pyproject.toml still allows them,
    unless `upgrade`."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split(" (")[0].strip()
    _, extras = _requirements(pyproject)
    locked_extras = [e for e in extras if e not in UNLOCKED_EXTRAS]
    every = lock_dir / ALL
    _compile(uv, locked_extras, every, None, upgrade, pyproject)
    every.write_text(_header(ALL, "every locked set-up resolved together, the constraints each lock is drawn "
                                  "from (not installed by itself)", version) + every.read_text())
    base = lock_dir / BASE
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / BASE
        if base.is_file():
            full.write_text(base.read_text())
        _compile(uv, BASE_EXTRAS, full, every, False, pyproject)
        base.write_text(_header(BASE, f"the default set-up: gfr's dependencies + extras {', '.join(BASE_EXTRAS)}",
                                version) + full.read_text())
        base_pins = read_lock(base)
        for name, extra in OVERLAYS.items():
            full = Path(tmp) / name
            _compile(uv, [*BASE_EXTRAS, extra], full, every, False, pyproject)
            entries = [pin.text for pkg, pin in read_lock(full).items() if pkg not in base_pins]
            (lock_dir / name).write_text(_header(name, f"extra [{extra}], on top of base.txt (only what base.txt "
                                                       f"lacks)", version) + "".join(entries))
    for name, tool in TOOLS.items():
        out = lock_dir / name
        if out.is_file():
            out.write_text("".join(pin.text for pin in read_lock(out).values()))  # keep the pin as a preference
        subprocess.run([uv, "pip", "compile", "--quiet", "-", "--generate-hashes", "--python-version", PYTHON_VERSION,
                        "--python-platform", PYTHON_PLATFORM, "--no-header", "--output-file", str(out),
                        *(["--upgrade"] if upgrade else [])], input=tool + "\n", text=True, check=True)
        out.write_text(_header(name, f"{tool} alone", version, source=f"'{tool}'") + out.read_text())
    return [every, *lock_paths(lock_dir), *(lock_dir / name for name in TOOLS)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gfr.environment", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    lk = sub.add_parser("lock", help="rewrite requirements/*.txt from pyproject.toml with uv")
    lk.add_argument("--uv", default="uv", help="the uv executable")
    lk.add_argument("--upgrade", action="store_true", help="let every pin move to the newest allowed version")
    ck = sub.add_parser("check", help="say which locks the installed packages match; pyproject.toml vs the locks")
    ck.add_argument("--expect", nargs="*", help="lock files the environment must match exactly (else exit 1)")
    args = ap.parse_args(argv)
    if args.command == "lock":
        for path in make_locks(args.uv, upgrade=args.upgrade):
            print(f"wrote {path.relative_to(PROJECT_ROOT)}: {len(read_lock(path))} packages")
    else:
        print("environment: " + summary(describe()))
    problems = [f"pyproject.toml and requirements/ disagree (make lock): {p}" for p in check_pyproject()]
    if args.command == "check" and args.expect:
        diffs = differences(installed(), pinned(LOCK_DIR / Path(p).name for p in args.expect))
        if diffs:
            problems.append(f"installed packages differ from {' + '.join(args.expect)}: " + "; ".join(diffs))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
