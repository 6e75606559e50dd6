"""Print the benchmark tables (Markdown) of benchmarks/results/*.json, as benchmarks/tables.py generates them.

    .venv/bin/python benchmarks/report.py                  # every block of benchmarks/README.md
    .venv/bin/python benchmarks/report.py --block sweep    # one block (results, runs, sweep, backends, inference, scale, numerics)
    .venv/bin/python benchmarks/report.py --performance    # README.md's Performance table
    .venv/bin/python benchmarks/report.py --quick          # the results table of the --quick smoke runs

`python -m gfr docs` writes the same blocks into README.md and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/report.py` from anywhere
    sys.path.insert(0, str(REPO))

from gfr.report.docs import load_benchmark_tables  # noqa: E402

benchmark_tables = load_benchmark_tables()

RESULTS = REPO / "benchmarks" / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=RESULTS, help="result files folder (default: benchmarks/results)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--block", choices=benchmark_tables.BLOCKS, help="print one block of benchmarks/README.md")
    which.add_argument("--performance", action="store_true", help="print README.md's Performance table")
    which.add_argument("--quick", action="store_true", help="print the results table of the --quick smoke runs")
    args = p.parse_args(argv)
    if args.performance:
        print(benchmark_tables.performance_block(args.dir))
    elif args.quick:
        print(benchmark_tables.results_table(benchmark_tables.load(args.dir, quick=True)))
    else:
        blocks = benchmark_tables.readme_blocks(args.dir)
        names = [args.block] if args.block else list(blocks)
        print("\n\n".join((f"<!-- {name} -->\n" if not args.block else "") + blocks[name] for name in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
