"""Atomic output: a file, or a new output directory, appears complete or not at all.

Three layers protect what superpose writes:

- :func:`check_output` is the pre-flight every command runs on each output path before any
  long work: the path is not empty, every name fits the file system, the parent is (or can
  become) a directory we can create files in (tried, not guessed), there is free space, and a
  directory to hold a network is new, empty or already a network. Each failure is one
  :class:`~superpose.errors.SuperposeError` line naming the path.
- :func:`output_directory` creates a *new* directory only at the end: the files go into a
  hidden sibling ``.NAME.PID.xxxxxxxx.tmp`` that is renamed to ``NAME`` once complete, so
  an interrupted or failed write never leaves ``NAME`` empty or half-filled. An existing
  directory is written in place, each file by an atomic rename (:func:`write_files`). While
  it writes it holds :func:`write_lock`.
- :func:`remove_stale_temporaries` deletes the hidden files and directories of writers that
  died (SIGKILL) before they could clean up.

For the tests only: when the environment variable ``_SUPERPOSE_PAUSE_BEFORE_RENAME`` names a
file, :func:`write_files` creates that file once every temporary file is written and waits
(up to 60 s) until it is deleted, so a test can signal a writer at the exact moment that
matters. It is private and not part of the command-line interface.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from glob import escape as glob_escape
from pathlib import Path

from superpose.errors import SuperposeError

MIN_FREE_BYTES = 1 << 20
"""Free space every output needs at least (1 MiB) when its size cannot be estimated."""
TEMP_NAME_ROOM = 32
"""Bytes a temporary or lock name adds to an output name (``.NAME.PID.xxxxxxxx.tmp``)."""
_PAUSE_ENV = "_SUPERPOSE_PAUSE_BEFORE_RENAME"


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
    """Delete temporary files and directories for ``target`` left by writers that no longer run
    (e.g. SIGKILL).

    Only entries named like ours (``.NAME.PID.*.tmp``) whose process has exited are removed, so
    a concurrent writer's is never touched. A directory of that name is a dead writer's new
    output directory (see :func:`output_directory`) and goes with all it holds. Returns the
    removed paths.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> open(os.path.join(d, ".out.txt.999999999.x1.tmp"), "w").close()  # a dead writer
        >>> [p.name for p in remove_stale_temporaries(os.path.join(d, "out.txt"))]
        ['.out.txt.999999999.x1.tmp']
    """
    target = Path(target)
    removed: list[Path] = []
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
            if path.is_dir() and not path.is_symlink():  # a dead writer's new directory
                shutil.rmtree(path)
            else:
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
        _pause_for_tests()
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def _pause_for_tests() -> None:
    """The private test hook described in the module docstring (a no-op unless it is set)."""
    flag = os.environ.get(_PAUSE_ENV)
    if not flag:
        return
    Path(flag).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)


def _dir_mode() -> int:
    """The mode a plain ``mkdir`` would give (mkdtemp alone gives 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _shown(path: str | os.PathLike[str], limit: int = 80) -> str:
    """A path for an error message, cut in the middle when very long (a 300-byte name)."""
    text = str(path)
    return (
        text if len(text) <= limit else text[: limit // 2 - 1] + "..." + text[-(limit // 2 - 2) :]
    )


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output(
    path: str | os.PathLike[str],
    *,
    option: str | None = None,
    kind: str = "directory",
    need_bytes: int = 0,
    owned: Iterable[str] | None = None,
) -> Path:
    """Refuse, before any long work, an output path that could not be written; return it.

    ``kind`` is ``"directory"`` or ``"file"``. Checked: the path is not empty; every name
    not yet on disk fits the file system (with room for the temporary name beside it); the
    nearest existing ancestor is a directory in which a file can really be created (a
    temporary file is made and removed); an existing ``path`` has the right kind and is not
    being written by another superpose process; and the file system has at least
    ``need_bytes`` (and :data:`MIN_FREE_BYTES`) free. With ``owned`` (the names a network
    directory holds), an existing non-empty directory holding none of them is refused, so a
    stray ``--out`` never mixes a network into unrelated files. Each failure is one line
    naming ``option`` and the path.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> check_output(os.path.join(d, "new", "net")).name
        'net'
        >>> open(os.path.join(d, "f"), "w").close()
        >>> check_output(os.path.join(d, "f", "net"), option="--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: --out .../f/net: .../f is a file, not a directory
    """
    if kind not in ("directory", "file"):
        raise ValueError(f"kind must be 'directory' or 'file', got {kind!r}")
    label = f"{option} " if option else ""
    if str(path) == "":
        raise SuperposeError(f"{option or 'output path'}: empty path; give a {kind} name")
    target = Path(path)
    where = f"{label}{_shown(target)}"
    for name in target.parts:
        if len(os.fsencode(name)) > 255:  # NAME_MAX nearly everywhere; stat would fail on it
            raise _too_long(where, name, 255, 0)
    try:
        existing = target
        missing: list[str] = []
        while not existing.exists():
            if existing.is_symlink():
                raise SuperposeError(f"{where}: {_shown(existing)} is a broken symbolic link")
            missing.append(existing.name)
            if existing.parent == existing:
                break
            existing = existing.parent
        if existing == target:
            if kind == "directory" and not target.is_dir():
                raise SuperposeError(f"{where}: exists and is not a directory")
            if kind == "file" and target.is_dir():
                raise SuperposeError(f"{where}: is a directory; give a file name")
        elif not existing.is_dir():
            raise SuperposeError(f"{where}: {_shown(existing)} is a file, not a directory")
        if existing != target:
            probe_dir = existing
        else:
            probe_dir = target if kind == "directory" else target.parent
        if existing != target:
            name_max = _name_max(probe_dir)
            for i, name in enumerate(missing):
                size = len(os.fsencode(name))
                room = TEMP_NAME_ROOM if i == 0 else 0
                if size + room > name_max:
                    raise _too_long(where, name, name_max, room)
        if existing == target and kind == "directory" and owned is not None:
            names = set(owned)
            entries = [e.name for e in target.iterdir()]
            ours = [n for n in entries if n in names]
            foreign = [
                n
                for n in entries
                if n not in names and not any(n.startswith(f".{o}.") for o in names)
            ]
            if foreign and not ours:
                raise SuperposeError(
                    f"{where}: directory is not empty and holds no superpose network "
                    f"(it has {_shown(foreign[0], 40)!r}); give a new or empty directory, "
                    "or remove its contents (nothing was written)"
                )
        _check_not_locked(target, where)
        # The probe is named like a writer's temporary (".superpose-probe.PID.x.tmp"), so one
        # left by a killed process is removed by the next check of the same directory.
        probe_target = Path(probe_dir) / "superpose-probe"
        remove_stale_temporaries(probe_target)
        try:
            fd, probe = tempfile.mkstemp(
                prefix=_temp_prefix(probe_target), suffix=".tmp", dir=probe_dir
            )
        except OSError as exc:
            raise SuperposeError(
                f"{where}: cannot create files in {_shown(probe_dir)} ({_why(exc)})"
            ) from None
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(probe_dir).free
    except SuperposeError:
        raise
    except OSError as exc:
        raise SuperposeError(f"{where}: cannot write there ({_why(exc)})") from None
    need = max(int(need_bytes), MIN_FREE_BYTES)
    if free < need:
        raise SuperposeError(
            f"{where}: only {_bytes(free)} free on that file system, about {_bytes(need)} "
            "needed; free some space or choose another place (nothing was written)"
        )
    return target


def _too_long(where: str, name: str, name_max: int, room: int) -> SuperposeError:
    size = len(os.fsencode(name))
    return SuperposeError(
        f"{where}: the name {_shown(name, 40)!r} is {size:,} bytes; at most "
        f"{name_max - room} fit here ({name_max} per name on this file system"
        + (", less room for the temporary name beside it)" if room else ")")
    )


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _holder(fd: int) -> str:
    """The process id the lock holder wrote into the lock file (or 'unknown')."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return "unknown"


def _busy(target: Path, fd: int, where: str | None = None) -> SuperposeError:
    return SuperposeError(
        f"{where or _shown(target)} is being written by another process "
        f"(pid {_holder(fd)}); wait for it to finish or choose another path"
    )


def _check_not_locked(target: Path, where: str) -> None:
    """Pre-flight: refuse now, not after the build, when another process holds the lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fd = os.open(_lock_path(target), os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody is writing
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(target, fd, where) from None
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while writing it; refuse at once if another holds it.

    The lock is ``fcntl.flock`` on ``.NAME.lock`` beside ``path``, holding the writer's process
    id. It is non-blocking on purpose: a second writer gets one line, "``path`` is being
    written by another process (pid N)", instead of waiting for a build of unknown length, and
    two writers can never mix one's weights with the other's JSON. The kernel drops the lock
    when its process dies (even by SIGKILL); the file is removed on release, and after taking
    the lock we check the file we locked is still the one at that name, so removing it never
    lets two writers in. Readers do not lock. Where ``flock`` is unsupported (some network file
    systems) the write proceeds unlocked.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "net")
        >>> with write_lock(target):
        ...     with write_lock(target):  # doctest: +ELLIPSIS
        ...         pass
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: ...net is being written by another process (pid ...)...
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    target = Path(path)
    lock = _lock_path(target)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = _busy(target, fd)
            os.close(fd)
            raise error from None
        except OSError:  # no flock here: write unlocked rather than not at all
            os.close(fd)
            yield
            return
        try:
            st, now = os.fstat(fd), os.stat(lock)
            if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed the file we opened: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def output_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield the directory to write ``path``'s files into; a new ``path`` appears only complete.

    When ``path`` exists, it is yielded itself (write each file with :func:`write_files`, so
    each is replaced atomically). When it does not, a hidden sibling ``.NAME.PID.xxxxxxxx.tmp``
    is yielded and renamed to ``path`` when the block ends without an exception; on any
    exception (an ``OSError`` such as a full disk, Ctrl-C, SIGTERM) it is deleted, with any
    parent directories this call created, so nothing new is left under the user's name. A
    SIGKILL leaves only the hidden directory, which the next write to ``path`` removes
    (:func:`remove_stale_temporaries`). The whole write holds :func:`write_lock`.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "a", "net")
        >>> with output_directory(target) as d:
        ...     write_files({d / "x.txt": b"x"})
        >>> sorted(os.listdir(target))
        ['x.txt']
        >>> try:
        ...     with output_directory(os.path.join(os.path.dirname(target), "b", "c")) as d:
        ...         raise OSError(28, "No space left on device")
        ... except OSError:
        ...     pass
        >>> sorted(os.listdir(os.path.dirname(os.path.dirname(target))))
        ['a']
    """
    target = Path(path)
    created: list[Path] = []
    parent = target.parent
    while not parent.exists() and parent.parent != parent:
        created.append(parent)
        parent = parent.parent
    done = False
    try:
        for d in reversed(created):
            with contextlib.suppress(FileExistsError):
                d.mkdir()
        with write_lock(target):
            remove_stale_temporaries(target)
            if target.is_dir():
                yield target
            else:
                tmp = Path(
                    tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
                )
                try:
                    os.chmod(tmp, _dir_mode())
                    yield tmp
                    os.rename(tmp, target)
                    _fsync_dir(target.parent)
                finally:
                    if tmp.exists():
                        shutil.rmtree(tmp, ignore_errors=True)
        done = True
    finally:
        if not done:
            for d in created:  # innermost first; only what is still empty
                with contextlib.suppress(OSError):
                    d.rmdir()


def write_directory(path: str | os.PathLike[str], files: dict[str, bytes], what: str) -> None:
    """Write ``files`` (name -> bytes) into directory ``path`` through :func:`output_directory`
    and :func:`write_files`; a write that fails (e.g. a full disk) is one SuperposeError
    naming ``what``, with nothing partial left.

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "out")
        >>> write_directory(target, {"a.txt": b"a"}, "the example")
        >>> os.listdir(target)
        ['a.txt']
    """
    try:
        with output_directory(path) as d:
            write_files({d / name: data for name, data in files.items()})
    except OSError as exc:
        raise SuperposeError(
            f"{path}: writing {what} failed ({exc.strerror or type(exc).__name__}); "
            "nothing partial was left"
        ) from None
