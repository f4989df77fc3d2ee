"""``python -m attnbench`` (works from a checkout without installing, e.g. on the GPU machine)."""

import sys

from attnbench.cli import main

sys.exit(main())
