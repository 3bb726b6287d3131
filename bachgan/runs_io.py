"""Crash-safe files for run directories: atomic writes and a torn-line-tolerant log.

A reader never sees a half-written file: everything is written to a temporary name
in the same folder, flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """`mode`: the file's permissions (a temporary file starts as 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


@contextmanager
def atomic_dir(final: str | os.PathLike):
    """Fill a temporary folder, then rename it to `final` in one step.

    Folders whose names end in '.tmp' are incomplete by definition and never loaded. An
    existing `final` is renamed aside to a '.tmp' name before the new one is renamed in and
    only then deleted, so a crash never leaves the old folder half-deleted under its name
    (nor the new one under a '.tmp' name that `remove_stale_tmp` would delete).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{final.name}.", suffix=".tmp"))
    old = final.with_name(f"{final.name}.{os.getpid()}.old.tmp")
    moved = False
    try:
        yield tmp
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            os.replace(final, old)
            moved = True
        os.replace(tmp, final)
    except BaseException:
        if moved and not final.exists():  # the new one never got in: the old one goes back
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if moved:
        shutil.rmtree(old, ignore_errors=True)


def complete_dirs(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Completed `prefix-NNNNNN` folders, oldest first (temporary ones excluded)."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    found = [
        d
        for d in parent.iterdir()
        if d.is_dir() and d.name.startswith(prefix + "-") and d.name[len(prefix) + 1 :].isdigit()
    ]
    return sorted(found, key=lambda d: int(d.name[len(prefix) + 1 :]))


def discard_dir(path: str | os.PathLike) -> None:
    """Delete a folder so that no reader ever sees it half-deleted: rename it to a '.tmp'
    name first (one atomic step), then remove it. A crash in between leaves only a '.tmp'
    folder, which `complete_dirs` skips and `remove_stale_tmp` deletes."""
    path = Path(path)
    doomed = path.with_name(f"{path.name}.{os.getpid()}.del.tmp")
    try:
        os.replace(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def remove_stale_tmp(parent: str | os.PathLike) -> None:
    """Delete leftovers of writes a killed process never finished."""
    parent = Path(parent)
    if parent.is_dir():
        for d in parent.glob("*.tmp"):
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete JSON lines; a torn last line (killed mid-write) is ignored."""
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except OSError:
        pass
    return rows


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())
