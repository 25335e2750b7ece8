"""Atomic writes, and output folders that never replace what eu did not write.

Every folder eu writes carries a marker file (``.eu-output.json``). An existing, non-empty
folder without it belongs to the user and is refused; one with it is replaced only when the
caller asks to overwrite, and then the old folder is moved aside and removed only once the new
one is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eu.errors import EUError

MARKER = ".eu-output.json"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path next to ``dest``; rename it to ``dest`` on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as err:
        raise EUError(f"could not write {dest}: {err.strerror or err} (nothing was written there)") from None
    finally:
        tmp_path.unlink(missing_ok=True)


def written_by_eu(folder: str | os.PathLike[str], kind: str | None = None) -> bool:
    """Whether ``folder`` carries eu's marker (of ``kind``, when given)."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return kind is None or meta.get("kind") == kind


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_output_dir(dest: str | os.PathLike[str], kind: str, overwrite: bool = False, option: str = "") -> Path:
    """Raise unless ``dest`` may receive a new ``kind`` output; returns it resolved.

    Allowed: a missing path, an empty folder, or (with ``overwrite``) a folder eu wrote as
    ``kind``. ``option`` names the command-line option to mention in the error.
    """
    dest = Path(dest).resolve()
    name = f"{option} {dest}" if option else str(dest)
    if not dest.exists() or _is_empty_dir(dest):
        return dest
    if not dest.is_dir():
        raise EUError(f"{name} is an existing file; choose a folder path that does not exist")
    if not written_by_eu(dest, kind):
        raise EUError(
            f"{name} exists and holds files eu did not write; refusing to replace them. Choose a new or empty folder"
        )
    if not overwrite:
        raise EUError(f"{name} holds an earlier eu {kind}; pass --overwrite to replace it, or choose another folder")
    return dest


def mark_output_dir(folder: str | os.PathLike[str], kind: str) -> None:
    """Write eu's marker into ``folder``."""
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind, "writer": "eu"}) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str], kind: str, overwrite: bool = False, option: str = "") -> Iterator[Path]:
    """Yield a temporary folder next to ``dest``; it becomes ``dest`` on success.

    ``dest`` must pass :func:`check_output_dir`; it is checked again just before the swap.
    """
    dest = check_output_dir(dest, kind, overwrite, option)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        mark_output_dir(tmp, kind)
        _swap_into_place(tmp, check_output_dir(dest, kind, overwrite, option))
    except OSError as err:
        raise EUError(f"could not write {dest}: {err.strerror or err} (nothing was written there)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    if _is_empty_dir(dest):
        dest.rmdir()
        os.replace(tmp, dest)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    aside.rmdir()
    os.replace(dest, aside)
    try:
        os.replace(tmp, dest)
    except OSError:
        os.replace(aside, dest)  # put the old folder back
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def output_dir(dest: str | os.PathLike[str], kind: str, option: str = "") -> Iterator[Path]:
    """An output folder that is filled file by file (each file atomically), e.g. resumable results.

    A missing or empty folder is created and marked; a folder eu wrote as ``kind`` is reused
    (the caller decides what in it is still valid); anything else is refused.
    """
    dest = check_output_dir(dest, kind, overwrite=True, option=option)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    mark_output_dir(dest, kind)
    try:
        yield dest
    except BaseException:
        if created and set(os.listdir(dest)) <= {MARKER}:
            shutil.rmtree(dest, ignore_errors=True)  # leave no empty output behind a failure
        raise


def write_text_atomic(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def cache_dir() -> Path:
    """The eu cache folder: ``$EU_CACHE`` or ``~/.cache/eu``."""
    return Path(os.environ.get("EU_CACHE") or Path.home() / ".cache" / "eu")


@contextlib.contextmanager
def cache_lock(target: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an inter-process lock for preparing ``target`` (a file or folder that may not exist yet).

    Callers check their done-marker, take the lock, check again, then do the work, so that
    concurrent processes (DDP ranks, parallel jobs) prepare each cache entry once. The lock file
    lives in ``CACHE/locks``, never beside ``target``, so output folders hold only their outputs.
    """
    from filelock import FileLock, Timeout

    key = hashlib.sha256(str(Path(target).resolve()).encode()).hexdigest()[:16]
    lock_file = cache_dir() / "locks" / f"{Path(target).name[:60]}-{key}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"eu: waiting for another process to finish preparing {target}", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def build_once(target: str | os.PathLike[str], ready: Callable[[], bool], build: Callable[[], object]) -> Path:
    """``target``, built by ``build()`` unless ``ready()`` says it is there already.

    The cache pattern written once: check, take :func:`cache_lock`, check again (another process may
    have built it while this one waited), build, and verify that ``ready()`` now holds.
    """
    target = Path(target)
    if ready():
        return target
    with cache_lock(target):
        if not ready():
            build()
            if not ready():
                raise EUError(f"preparing {target} did not complete; remove it and run again")
    return target


def write_jsonl_atomic(dest: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines (UTF-8) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise EUError(f"file not found: {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise EUError(f"{path}:{lineno}: invalid JSON ({err.msg}); fix or remove this line") from None
            if not isinstance(value, dict):
                raise EUError(f"{path}:{lineno}: expected a JSON object per line, got {type(value).__name__}")
            rows.append(value)
    return rows
