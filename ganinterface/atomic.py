"""Write files so that a reader only ever sees the old file or the complete new one.

Everything is written to a hidden temporary next to the destination (same directory, hence same file
system, so ``os.replace`` is an atomic rename), flushed to disk, then renamed over the destination.
Any exception on the way -- an I/O error, a cancelled export, Ctrl-C -- removes the temporary and
leaves the destination untouched.

A process killed while writing (SIGKILL, a power cut) cannot remove its temporary: the next write
into the same folder removes the ones left there (``remove_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # what _temporary_sibling makes
STALE_AFTER_S = 120.0  # a temporary this old is no write in progress: its writer was killed
_swept: set[Path] = set()  # folders already cleaned by this process


def _temporary_sibling(path: Path) -> Path:
    _sweep_once(path.parent)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(folder: str | os.PathLike[str],
                             older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries (files or folders) killed writers left in ``folder``; returns them.

    Only names this module makes, and only ones not touched for ``older_than_s``: a younger one may
    be another process writing right now.
    """
    removed = []
    deadline = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not TEMPORARY_NAME.fullmatch(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime > deadline:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _sweep_once(folder: Path) -> None:
    """Clean ``folder`` at this process's first write into it (not at every one: a batch job writes
    thousands of files into one folder)."""
    key = folder.absolute()
    if key not in _swept:
        _swept.add(key)
        remove_stale_temporaries(folder)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` for a writer that needs a file name (ffmpeg).

    If the block succeeds the temporary (which must exist, written and closed, by then) is flushed to
    disk (unless ``durable=False``) and replaces ``path``; otherwise it is removed.
    """
    destination = Path(path)
    temporary = _temporary_sibling(destination)
    try:
        yield temporary
        if durable:
            _fsync_file(temporary)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if durable:
        _fsync_directory(destination.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, durable: bool = True,
                 **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary beside ``path`` for writing; it replaces ``path`` only if the block succeeds.

    ``mode`` is "wb" or "w" (text; pass ``encoding``/``newline`` through ``open_kwargs``).
    ``durable=False`` skips the fsyncs (several ms a file): still atomic for readers, but a power
    cut may lose the file -- for bulk output that can be regenerated, such as a dataset.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports modes 'w' and 'wb', not {mode!r}")
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, durable) as temporary:
        with open(temporary, mode, **open_kwargs) as handle:
            yield handle


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8", *,
                      durable: bool = True) -> None:
    with atomic_write(path, "w", encoding=encoding, durable=durable) as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    with atomic_write(path, "wb", durable=durable) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary directory to fill; it becomes ``path`` only if the block succeeds.

    An existing ``path`` is replaced as a whole (its old contents are removed after the new directory
    is in place).  On Linux the two directories swap places in one step (``renameat2`` with
    ``RENAME_EXCHANGE``); elsewhere the old one is moved aside first, so for a moment ``path`` is
    absent -- but never half-written.
    """
    destination = Path(path)
    if destination.exists() and not destination.is_dir():
        raise FileExistsError(f"{destination} exists and is not a directory")
    temporary = _temporary_sibling(destination)
    temporary.mkdir()
    try:
        yield temporary
        for child in temporary.iterdir():
            if child.is_file():
                _fsync_file(child)
        _install_directory(temporary, destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(destination.parent)


def _install_directory(temporary: Path, destination: Path) -> None:
    if not destination.exists():
        os.replace(temporary, destination)
        return
    if _exchanged(temporary, destination):
        shutil.rmtree(temporary, ignore_errors=True)  # it holds the old directory now
        return
    previous = _temporary_sibling(destination)
    os.replace(destination, previous)
    try:
        os.replace(temporary, destination)
    except BaseException:
        os.replace(previous, destination)
        raise
    shutil.rmtree(previous, ignore_errors=True)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchanged(first: Path, second: Path) -> bool:
    """Swap two paths atomically where the system can (Linux 3.15+, glibc 2.28+)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                     _RENAME_EXCHANGE) == 0
