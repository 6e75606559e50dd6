"""Where the project's folders lie (the defaults that every stage and the CLI share)."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = PROJECT_ROOT / "params"
REPORTS_DIR = PROJECT_ROOT / "reports"
RUNS_DIR = REPORTS_DIR / "runs"


def use_project_root() -> Path:
    """Work from the project root (Jupyter starts a kernel in notebooks/), so the default relative paths resolve."""
    root = PROJECT_ROOT
    if (root / "params").is_dir() and (root / "notebooks").is_dir() and Path.cwd() != root:
        os.chdir(root)
    return Path.cwd()
