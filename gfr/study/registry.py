"""The study's runs: which backbone x iteration runs it expects, their names, and the code that can change them."""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from gfr.errors import GfrError
from gfr.models.backbones import BACKBONES, REGISTRY
from gfr.params import PARAMS_DIR, load_params, known_iterations
from gfr.paths import PROJECT_ROOT, RUNS

# Fine-tuning (iterations with a `finetune` section) is costly on a CPU, so the study fine-tunes two backbones:
# the ImageNet one that did best on validation in the head-only iterations, and dlib's face descriptor.
FINETUNE_BACKBONES = ("ResNet50", "DlibFaceDescriptor")
# The module that executes a run: every gfr module it imports, directly or not, can change a run's numbers.
RUN_MODULE = "gfr.study.run"
# The module that records what a run is made from (gfr.study.inputs) cannot change its numbers: it is left out
# (with what it imports), so that editing it does not make every run stale.
RECORD_KEEPING = "gfr.study.inputs"
# The notebook that executes one run (relative to the project root); each run is one executed copy of it.
TRAIN_NOTEBOOK = Path("notebooks") / "02_train.py"


@dataclass(frozen=True, order=True)
class RunId:
    """One run of the study: a backbone and an iteration; its name is e.g. ResNet50-it3."""

    backbone: str
    iteration: int

    @property
    def name(self) -> str:
        return f"{self.backbone}-it{self.iteration}"

    @classmethod
    def parse(cls, name: str) -> RunId:
        """The run of a name such as ResNet50-it3; a clear error for anything else."""
        backbone, sep, iteration = name.rpartition("-it")
        if not (sep and backbone and iteration.isdigit()):
            raise GfrError(f"{name!r} is not a run name (<backbone>-it<iteration>, e.g. ResNet50-it3)")
        return cls(backbone, int(iteration))

    def sort_key(self) -> tuple[int, int]:
        """Registry order of the backbone, then the iteration."""
        order = BACKBONES.index(self.backbone) if self.backbone in BACKBONES else len(BACKBONES)
        return order, self.iteration


def run_order(name: str) -> tuple[int, int]:
    """Sort key of a run name (registry order of its backbone, then iteration); unparsable names go last."""
    try:
        return RunId.parse(name).sort_key()
    except GfrError:
        return len(BACKBONES) + 1, 0


def notebook_parameters(run: RunId) -> dict:
    """The train notebook's parameters that make it execute `run` (its other parameters keep their defaults)."""
    return {"backbone": run.backbone, "iteration": run.iteration}


def finetune_iterations(params_dir: str | os.PathLike = PARAMS_DIR) -> list[int]:
    """Iterations whose parameters fine-tune the backbone (they have a `finetune` section)."""
    return [it for it in known_iterations(params_dir) if load_params(it, params_dir=params_dir).finetune is not None]


def expected_runs(finetune: bool = True, params_dir: str | os.PathLike = PARAMS_DIR) -> list[RunId]:
    """Every run the study expects: each backbone x each head-only iteration (for a backbone that takes only
    CelebA's native size, dlib's descriptor, the native-input iterations, augmented ones included), then the
    fine-tuned run(s)."""
    tuned = finetune_iterations(params_dir)
    heads = [it for it in known_iterations(params_dir) if it not in tuned]
    loaded = {it: load_params(it, params_dir=params_dir) for it in heads}
    native = {it for it, p in loaded.items() if p.native_input}
    runs = [RunId(b, it) for b in BACKBONES for it in heads if not REGISTRY[b].native_only or it in native]
    if finetune:
        runs += [RunId(b, it) for b in FINETUNE_BACKBONES for it in tuned]
    return sorted(runs, key=RunId.sort_key)


def _module_file(module: str) -> Path | None:
    base = PROJECT_ROOT / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, package: str) -> set[str]:
    """The gfr modules a source file imports (module-level or inside functions)."""
    return _imports_of(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _imports_of(path: str, mtime_ns: int) -> set[str]:  # each file parsed once per process while unchanged
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), path)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gfr"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gfr":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from gfr.models import head`
    return {m for m in found if _module_file(m)}


def source_files(*starts: str | Path) -> list[Path]:
    """The source files of each start (a gfr module name, by default the module that executes a run; or a source
    file such as a notebook, itself included) and of every gfr module it imports, directly or not (read, not
    imported); relative to the project root."""
    seen, files, todo = set(), set(), []
    for start in starts or (RUN_MODULE,):
        if isinstance(start, Path):
            files.add(start)
            todo += sorted(_imported_modules(PROJECT_ROOT / start, "gfr"))
        else:
            todo.append(start)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None or name == RECORD_KEEPING:
            continue
        seen.add(name)
        todo += sorted(_imported_modules(path, "gfr"))
    return sorted(files | {_module_file(m).relative_to(PROJECT_ROOT) for m in seen})


def make_rules(stamps_dir: str | os.PathLike) -> str:
    """Make rules for the study's runs (included by the Makefile): run lists, sources, and each run's stamp
    (`stamps_dir`/<run>.stamp, written by gfr.study.inputs: old when the run's inputs are unchanged) and parameters."""
    head = [r for r in expected_runs(False)]
    tuned = [r for r in expected_runs(True) if r not in head]
    lines = [
        "# generated by `python -m gfr runs --make` from gfr/study/registry.py and params/: do not edit",
        f"HEAD_RUNS := {' '.join(r.name for r in head)}",
        f"FINETUNE_RUNS := {' '.join(r.name for r in tuned)}",
        f"RUN_SRC := {' '.join(str(p) for p in source_files())}",
        f"TRAIN_NOTEBOOK := {TRAIN_NOTEBOOK}",
    ]
    for r in head + tuned:
        target = f"{RUNS}/{r.name}.ipynb"
        args = " ".join(f"-p {name} {value}" for name, value in notebook_parameters(r).items())
        lines.append(f"{target}: {Path(stamps_dir) / r.name}.stamp")
        lines.append(f"{target}: RUN_ARGS := {args}")
    return "\n".join(lines) + "\n"
