"""The package's layout: imports go one way (data <- models <- study <- report | pipeline <- predict <- cli), so there is
no cycle; report (documents) and pipeline (execution) are side by side and import nothing of each other."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gfr"
# layer of each top-level part of gfr; a module may import only from its own layer or a lower one
LAYERS = {"errors": 0, "paths": 0, "files": 0, "progress": 0, "params": 0, "environment": 0,
          "data": 1, "models": 2, "study": 3, "report": 4, "pipeline": 4, "predict": 5, "cli": 6, "__main__": 7,
          "__init__": 0}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def gfr_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gfr":
            found.add(node.module if node.module != "gfr" else f"gfr.{node.names[0].name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gfr"}
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_one_way(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    here = part_of(".".join(rel.parts))
    assert here in LAYERS, f"{rel}: new top-level part of gfr; give it a layer in this test"
    for module in gfr_imports(path):
        there = part_of(module)
        assert LAYERS[there] <= LAYERS[here], f"{rel} imports {module}: {there} is above {here}"
        assert LAYERS[there] < LAYERS[here] or there == here or LAYERS[here] == 0, \
            f"{rel} imports {module}: {there} is beside {here}, not below it"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_a_one_line_docstring(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{path} has no docstring"


PROJECT = PACKAGE.parent
PRODUCT = [*SOURCES, *sorted((PROJECT / "notebooks").glob("*.py")), *sorted((PROJECT / "benchmarks").glob("*.py")),
           PROJECT / "Makefile"]  # what uses gfr; tests/ is left out on purpose


def public_names(path: Path) -> list[str]:
    """The public functions and classes a module defines at its top level, and their public methods."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            names.append(node.name)
        if isinstance(node, ast.ClassDef):
            names += [n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    return names


def unused_names(sources: list[Path], users: list[Path]) -> list[str]:
    """The public names of `sources` that no file of `users` names besides their own definition."""
    texts = [p.read_text() for p in users]
    return [f"{path.name}: {name}" for path in sources for name in public_names(path)
            if sum(len(re.findall(rf"\b{name}\b", t)) for t in texts) < 2]


def test_every_public_function_is_used_by_the_product():
    """Dead code, or code only tests use, fails here: each public name of gfr is named somewhere in gfr, the
    notebooks, the benchmarks or the Makefile besides its own definition (a test helper belongs in tests/)."""
    assert unused_names(SOURCES, PRODUCT) == []


def test_unused_code_is_caught(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def used():\n    pass\n\n\ndef never_called_anywhere_xyz():\n    used()\n")
    assert unused_names([module], [module]) == ["module.py: never_called_anywhere_xyz"]
