"""The one exception users see: a clear, one-line message and exit code 2 on the CLI."""


class SuperposeError(Exception):
    """Bad input or an impossible request, explained in one line.

    Example:
        >>> raise SuperposeError("task.json, gate 3: unknown op 'nand'")
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: task.json, gate 3: unknown op 'nand'
    """
