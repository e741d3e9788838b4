"""The ``superpose`` console script: guard Ctrl-C first, then import the command line.

Importing numpy, scipy and the CLI takes about a second; a Ctrl-C in that second would print
a traceback from deep inside an import. The guard (:func:`superpose._startup.guard_start_up`)
is installed here, by the entry point itself, before anything heavy loads, so that importing
``superpose`` as a library never reads ``sys.argv`` or touches signal handlers. This module
imports only the standard library until :func:`main` runs; ``superpose.cli`` hands Ctrl-C
back to Python once it has loaded.
"""

from __future__ import annotations


def main() -> int:
    """Entry point of the ``superpose`` console script (``[project.scripts]``)."""
    from superpose._startup import guard_start_up

    guard_start_up()
    from superpose.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":  # pragma: no cover - ``python -m superpose._launch``
    raise SystemExit(main())
