"""Atomic file output: a file appears complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path


def _temp_prefix(target: Path) -> str:
    """``.NAME.PID.``: the writer's process id lets a later writer spot a dead one's leftovers."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files for ``target`` left by writers that no longer run (e.g. SIGKILL).

    Only files named like ours (``.NAME.PID.*.tmp``) whose process has exited are removed, so a
    concurrent writer's file is never touched. Returns the removed paths.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> open(os.path.join(d, ".out.txt.999999999.x1.tmp"), "w").close()  # a dead writer
        >>> [p.name for p in remove_stale_temporaries(os.path.join(d, "out.txt"))]
        ['.out.txt.999999999.x1.tmp']
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for path in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
        # ".NAME." + "PID" + "." + random part (never holds a dot) + ".tmp"; anything else,
        # e.g. ".NAME.1.PID.x.tmp" of a target "NAME.1", is not ours.
        pid_text, dot, random_part = path.name[len(target.name) + 2 : -4].partition(".")
        if not dot or "." in random_part or not pid_text.isdigit():
            continue
        if int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (mkstemp alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> open(target).read()
        'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.fchmod(fd, _file_mode())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_files(files: dict[Path, bytes]) -> None:
    """Write several files atomically, as close to all-or-nothing as renames allow.

    Every temporary file is written and synced before the first rename, so a kill leaves
    each file either old or new (never truncated), and old and new mix only if the kill
    lands between two back-to-back renames.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(target)
            fd, tmp_name = tempfile.mkstemp(
                prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent
            )
            staged.append((Path(tmp_name), target))
            os.fchmod(fd, _file_mode())
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
