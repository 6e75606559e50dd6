"""Execute a py:percent notebook with papermill into an .ipynb, atomically; keep a failed one for inspection."""

from __future__ import annotations

import os
from pathlib import Path

from gfr import files
from gfr.errors import GfrError
from gfr.study.artefacts import failed_path

KERNEL = "gfr"


def load(source: str | os.PathLike):
    """A jupytext py:percent script (or .ipynb) as a notebook node."""
    import jupytext

    source = Path(source)
    if not source.is_file():
        raise GfrError(f"notebook not found: {source}")
    return jupytext.read(source)


def parameter_defaults(source: str | os.PathLike) -> dict:
    """The default values of a notebook's parameters, as papermill reads its `parameters` cell (literals only)."""
    import ast

    from papermill.translators import PythonTranslator

    for cell in load(source).cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return {p.name: ast.literal_eval(p.default) for p in PythonTranslator.inspect(cell)}
    raise GfrError(f"{source}: no cell tagged `parameters`")


def execute_notebook(source, target, parameters: dict, kernel: str = KERNEL, prepare_only: bool = False, progress: bool = True) -> Path:
    """Run `source` with `parameters` into `target`; on failure keep `<target>.failed.ipynb` and raise GfrError."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    notebook = load(source)
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": f"Python ({kernel})", "language": "python"}
    tmp = target.with_name(f".{target.stem}.tmp.ipynb")
    try:
        papermill.execute_notebook(notebook, str(tmp), parameters=parameters, kernel_name=kernel,
                                   prepare_only=prepare_only, progress_bar=progress, log_output=progress,
                                   cwd=os.getcwd())
    except PapermillExecutionError as exc:
        files.replace(tmp, failed_path(target))
        raise GfrError(f"{source} -> {target} failed in cell {exc.exec_count}: {exc.ename}: "
                       f"{str(exc.evalue).splitlines()[0] if exc.evalue else ''} (partial notebook: {failed_path(target)})") from None
    except BaseException:
        if tmp.exists():
            files.replace(tmp, failed_path(target))
        raise
    files.replace(tmp, target)
    if failed_path(target).exists():
        failed_path(target).unlink()
    return target
