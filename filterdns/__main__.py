"""`python -m filterdns` runs the command line."""

from __future__ import annotations

import sys

from filterdns.cli.main import main

sys.exit(main())
