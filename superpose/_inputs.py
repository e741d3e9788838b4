"""Reading untrusted input: file bytes, and JSON (and YAML) integers, as one-line errors.

Every read of a user's file goes through :func:`read_bytes` or :func:`reading`, which turn an
``OSError`` (permission, ``EIO``, a directory swapped in) into a SuperposeError naming the file.

Python refuses to convert an integer string of more than ``sys.get_int_max_str_digits()``
digits (4300 by default) and raises a bare ``ValueError``. Every parser of untrusted text in
superpose goes through :func:`loads` (or :func:`check_int_digits` for YAML), which refuses such
an integer up front with a :class:`~superpose.errors.SuperposeError` naming it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from superpose.errors import SuperposeError

DEFAULT_MAX_DIGITS = 4300
"""Python's default limit on the digits of an integer read from text."""


def max_int_digits() -> int:
    """Most digits an integer in an input may have (Python's limit, or 4300 when unlimited)."""
    limit = sys.get_int_max_str_digits()
    return min(limit, DEFAULT_MAX_DIGITS) if limit else DEFAULT_MAX_DIGITS


def describe_number(text: str) -> str:
    """A short, one-line rendering of a long number: its first digits and its length.

    Example:
        >>> describe_number("1" * 5000)
        '11111111111111111111... (5000 digits)'
    """
    text = text.strip()
    digits = sum(c.isdigit() for c in text)
    if len(text) <= 24:
        return text
    return f"{text[:20]}... ({digits} digits)"


MAX_SHOWN = 80
"""Most characters of a bad value quoted in an error message (the rest is cut, with "…")."""


def short_repr(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, in bounded time and memory.

    An error message quotes the offending value, but a hostile value may be megabytes long or
    (through YAML aliases) a structure whose full ``repr`` is gigabytes: ``reprlib`` renders
    only its first elements and levels, and the result is cut to one short line.

    Example:
        >>> short_repr("x" * 1000, 10)
        "'xxxxxxxx…"
        >>> short_repr([1, 2])
        '[1, 2]'
    """
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit + 2
    r.maxlist = r.maxdict = r.maxtuple = r.maxset = 8
    r.maxlevel = 3
    try:
        text = repr(value[: limit + 1]) if isinstance(value, (str, bytes)) else r.repr(value)
    except ValueError:  # an int beyond Python's digit limit
        text = f"<integer of about {value.bit_length() * 0.30103:.0f} digits>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_int_digits(text: str, source: str) -> None:
    """Refuse an integer literal with more digits than :func:`max_int_digits`.

    Example:
        >>> check_int_digits("12", "x.json")
        >>> try:
        ...     check_int_digits("9" * 5000, "x.json")
        ... except SuperposeError as exc:
        ...     print(exc)
        x.json: integer 99999999999999999999... (5000 digits) is too large (at most 4300 digits)
    """
    limit = max_int_digits()
    if sum(c.isdigit() for c in text) > limit:
        raise SuperposeError(
            f"{source}: integer {describe_number(text)} is too large (at most {limit} digits)"
        )


def loads(text: str | bytes, source: str) -> Any:
    """``json.loads``, refusing integers beyond the digit limit and keys given twice with a
    SuperposeError.

    Decoding and syntax errors propagate as from ``json.loads`` (each caller words them).

    Example:
        >>> loads('{"a": [1, 2.5]}', "x.json")
        {'a': [1, 2.5]}
    """

    def parse_int(literal: str) -> int:
        check_int_digits(literal, source)
        return int(literal)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # A key given twice would silently keep the last value: refuse it instead.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise SuperposeError(f"{source}: key {short_repr(key)} is given twice")
            out[key] = value
        return out

    return json.loads(text, parse_int=parse_int, object_pairs_hook=unique)


@contextmanager
def reading(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised while reading ``path`` into a one-line SuperposeError.

    Example:
        >>> try:
        ...     with reading("m.bin"):
        ...         raise OSError(5, "Input/output error")
        ... except SuperposeError as exc:
        ...     print(exc)
        m.bin: cannot be read (Input/output error)
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SuperposeError(f"{path}: cannot be read ({reason})") from None


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a file, or a SuperposeError naming it when the read fails."""
    with reading(path):
        return Path(path).read_bytes()
