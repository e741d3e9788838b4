"""The one exception users see: a clear, one-line message and exit code 2 on the CLI."""

from __future__ import annotations


class SuperposeError(Exception):
    """Bad input or an impossible request, explained in one line.

    The message speaks the library's language (parameter names, construction names), because
    the library is called from Python as often as from the command line. Where the command
    line spells the remedy differently, ``cli`` carries that spelling (e.g. ``"--construction
    naive"``) and the ``superpose`` command appends it (:meth:`for_command_line`).

    Example:
        >>> raise SuperposeError("task.json, gate 3: unknown op 'nand'")
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: task.json, gate 3: unknown op 'nand'
        >>> SuperposeError("use the 'naive' construction", cli="--construction naive").for_command_line()
        "use the 'naive' construction (--construction naive)"
    """

    def __init__(self, message: str = "", *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = cli

    def for_command_line(self) -> str:
        """The message with the command-line spelling of its remedy, on one line."""
        message = " ".join(str(self).splitlines())
        return f"{message} ({self.cli})" if self.cli else message
