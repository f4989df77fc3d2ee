"""``python -m attnbench`` (works from a checkout without installing, e.g. on the GPU machine)."""

import sys

from attnbench.cli import main

# Guarded: benchmark case processes re-import the main module under another name and must not re-run the CLI.
if __name__ == "__main__":
    sys.exit(main())
