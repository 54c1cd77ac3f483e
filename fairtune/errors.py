"""The one error type for bad user input: a recipe value, a data file, a row, an output directory, a launch config.

`FairtuneError` is a `ValueError`, so code that already catches `ValueError` keeps working. Its message is one line
that names the field, file, line or row and the fix; the CLI prints it as `fairtune <command>: <message>` with exit
code 2 and no traceback (`fairtune --debug ...` shows the traceback).
"""

from __future__ import annotations


class FairtuneError(ValueError):
    """A user error with a message that names what is wrong (field, file, line or row) and how to fix it."""


__all__ = ["FairtuneError"]
