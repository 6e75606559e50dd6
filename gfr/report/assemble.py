"""Assemble the executed notebooks into one report: HTML by nbconvert (code hidden), PDF by headless Chromium."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

from gfr import files
from gfr.errors import GfrError

PERFORMANCE_INTRO = """## Model Performance Analysis
One section per backbone and iteration (each is an executed notebook in `reports/runs/`). A run whose
ImageNet weights cannot be had on the machine that built this report is shown as skipped, with the reason.
Curves: bold lines are the reported head (the first seed), thin lines the other seeds."""

LATER_SECTIONS = ("03_evaluate.ipynb", "04_compare.ipynb", "05_beyond_celeba.ipynb")  # after the runs, in order

PRINT_CSS = """<style>
@page { size: A4; margin: 10mm; }
@media print { .jp-Cell { break-inside: avoid; } body { font-size: 11px; }
  .jp-RenderedHTMLCommon table, table.dataframe { font-size: 8px !important; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1px 3px !important; }
  .jp-OutputArea-output, .jp-RenderedHTMLCommon { overflow: visible !important; } }
.jp-RenderedImage img, .jp-OutputArea-output img { max-width: 100%; height: auto; }
table.dataframe { font-size: 11px; max-width: 100%; }
table.dataframe td, table.dataframe th { white-space: normal; overflow-wrap: break-word; }
</style>"""


def _clean(notebook, keep_markdown: bool = True):
    """A copy without parameter cells, markdown (optionally), printed streams (progress, library logs) and the
    `SystemExit(0)` of a notebook that stopped early on purpose (a skipped run: papermill's clean stop).

    The report shows what the notebooks display; everything printed stays in the executed notebooks."""
    nb = copy.deepcopy(notebook)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            continue
        if cell.cell_type == "markdown" and not keep_markdown:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" and not _clean_stop(o)]
        cells.append(cell)
    nb.cells = cells
    return nb


def _clean_stop(output) -> bool:
    """Whether a cell output is the `SystemExit(0)` with which a notebook ends its work early (papermill's clean stop)."""
    return output.get("output_type") == "error" and output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0")


def run_sections(runs_dir: Path) -> list:
    """One section per expected run of the study (registry order): its executed notebook's cells, or a
    "not run" note (with the error of a failed execution, if one was kept)."""
    import nbformat

    from gfr.study.artefacts import error_of, failed_path
    from gfr.study.registry import expected_runs

    cells = []
    for run in expected_runs():
        path = runs_dir / f"{run.name}.ipynb"
        if path.is_file():
            cells.extend(_clean(nbformat.read(path, as_version=4), keep_markdown=False).cells)
            continue
        failed = failed_path(path)
        why = f"its last execution failed: {error_of(failed)}" if failed.is_file() else "no executed notebook"
        cells.append(nbformat.v4.new_markdown_cell(f"### {run.backbone}, iteration {run.iteration}\n\n"
                                                   f"**Not run** ({why}). `make report` runs it."))
    return cells


FIRST_SECTIONS = ("00_results.ipynb", "01_data.ipynb")  # results at a glance, then data & setup; the runs follow


def assemble(notebooks_dir: str | os.PathLike):
    """One notebook: results at a glance, data & setup, a section per run, evaluation, summary."""
    import nbformat

    root = Path(notebooks_dir)
    for path in [root / name for name in FIRST_SECTIONS + LATER_SECTIONS]:
        if not path.is_file():
            raise GfrError(f"executed notebook missing: {path} (run `make report`)")
    report = _clean(nbformat.read(root / FIRST_SECTIONS[0], as_version=4))
    for name in FIRST_SECTIONS[1:]:
        report.cells.extend(_clean(nbformat.read(root / name, as_version=4)).cells)
    report.cells.append(nbformat.v4.new_markdown_cell(PERFORMANCE_INTRO))
    report.cells.extend(run_sections(root / "runs"))
    for name in LATER_SECTIONS:
        report.cells.extend(_clean(nbformat.read(root / name, as_version=4)).cells)
    return report


def to_html(notebook) -> str:
    """The report as standalone HTML with code and prompts hidden."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook)
    return body.replace("</head>", PRINT_CSS + "</head>", 1)


def chromium() -> str:
    """The headless browser used to print the PDF; a clear error if none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    raise GfrError("no Chromium found to print the PDF: run `make setup-pdf` (Debian package chromium)")


def to_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print the HTML report to PDF with headless Chromium (offline; nothing is downloaded)."""
    import tempfile

    with files.atomic_path(pdf_path, suffix=".pdf") as tmp, tempfile.TemporaryDirectory(prefix="gfr-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", "--virtual-time-budget=20000",
               f"--print-to-pdf={tmp}", html_path.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            raise GfrError(f"Chromium could not print {html_path} to PDF: {done.stderr.strip().splitlines()[-1:]}")
    return pdf_path


def build(notebooks_dir: str | os.PathLike, out_dir: str | os.PathLike, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write out_dir/report.html (and report.pdf); return their paths."""
    out_dir = Path(out_dir)
    html_path = out_dir / "report.html"
    files.write_text(html_path, to_html(assemble(notebooks_dir)))
    return html_path, to_pdf(html_path, out_dir / "report.pdf") if pdf else None
