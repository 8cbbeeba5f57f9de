"""Atomic folder and file writes that a killed process cannot leave half-done.

A write goes to a hidden partial beside its target, named with the writer's process id, and is renamed
over the target only when complete. A process killed mid-write leaves only that hidden partial, which the
next process to write into that folder (or the server at start) removes once its process is gone: no reader
ever sees a partial file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)(-.*)?$")
_SCRATCH = re.compile(r"^meiscope-scratch-(?P<pid>\d+)-")


def partial_prefix(target: Path) -> str:
    """Prefix of this process's partials for `target` (for tempfile's prefix=)."""
    return f".{target.name}.partial-{os.getpid()}-"


def old_name(target: Path) -> Path:
    """Where the previous version of `target` waits while the new one is renamed into place."""
    return target.with_name(f".{target.name}.old-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


_cleaned: set[Path] = set()  # folders this process has cleaned already


def clean_leftovers_once(folder: Path) -> None:
    """clean_leftovers the first time this process writes into `folder`: writers call it before each write,
    and a folder of many runs is scanned once per process, not once per save."""
    folder = Path(folder).resolve()
    if folder not in _cleaned:
        clean_leftovers(folder)
        _cleaned.add(folder)


def clean_leftovers(folder: Path) -> list[str]:
    """Remove the partials of dead writers in `folder`; an old version whose replacement never arrived is
    put back. Returns the names it handled."""
    handled: list[str] = []
    if not folder.is_dir():
        return handled
    for path in folder.iterdir():
        match = _LEFTOVER.match(path.name)
        if match is None or _alive(int(match["pid"])):  # a live writer (this process too) is still at work
            continue
        target = folder / match["name"]
        if match["kind"] == "old" and not target.exists():
            os.replace(path, target)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        handled.append(path.name)
    return handled


def scratch_dir() -> Path:
    """A fresh folder in the system's temporary directory for work that is thrown away (an export being
    zipped for a download), named with this process's id so that clean_scratch can tell it is abandoned."""
    return Path(tempfile.mkdtemp(prefix=f"meiscope-scratch-{os.getpid()}-"))


def clean_scratch() -> list[str]:
    """Remove the scratch folders of processes that are gone (a server killed mid-export)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob("meiscope-scratch-*"):
        match = _SCRATCH.match(path.name)
        if match and not _alive(int(match["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
