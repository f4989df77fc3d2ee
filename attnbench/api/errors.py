"""The one exception type of the API's own input checks."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input to an API call: ``str()`` is one line naming the file, key or option and what is wrong.

    Options are named as on the command line (``RunOptions.only`` is ``--only``), so the command line shows the
    message as it is."""
