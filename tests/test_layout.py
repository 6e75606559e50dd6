"""The package's layout: imports go one way (data <- models <- study <- report <- cli), so there is no cycle."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gfr"
# layer of each top-level part of gfr; a module may import only from its own layer or a lower one
LAYERS = {"errors": 0, "paths": 0, "files": 0, "progress": 0, "params": 0, "cluster": 0, "environment": 0,
          "data": 1, "models": 2, "study": 3, "report": 4, "predict": 5, "wild": 5, "cli": 5, "__main__": 6, "__init__": 0}


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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_a_one_line_docstring(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{path} has no docstring"


def test_no_two_public_functions_share_a_vague_name():
    names = [n.name for p in SOURCES for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.FunctionDef)]
    assert "execute" not in names
