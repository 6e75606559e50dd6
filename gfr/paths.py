"""Where the project's folders lie (the defaults that every stage and the CLI share)."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# As the commands' defaults name them: relative to the working directory (make and the notebooks work from the
# project root), so `gfr ... --help` shows them as typed.
REPORTS = Path("reports")
RUNS = REPORTS / "runs"
SPLIT_MANIFEST = REPORTS / "split.csv"
# The same folders inside this project, wherever the command runs.
PARAMS_DIR = PROJECT_ROOT / "params"
REPORTS_DIR = PROJECT_ROOT / REPORTS
RUNS_DIR = PROJECT_ROOT / RUNS


def use_project_root() -> Path:
    """Work from the project root (Jupyter starts a kernel in notebooks/), so the default relative paths resolve."""
    root = PROJECT_ROOT
    if (root / "params").is_dir() and (root / "notebooks").is_dir() and Path.cwd() != root:
        os.chdir(root)
    return Path.cwd()
