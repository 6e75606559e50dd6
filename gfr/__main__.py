"""Entry point for `python -m gfr`."""

import sys

from gfr.cli import main

sys.exit(main())
