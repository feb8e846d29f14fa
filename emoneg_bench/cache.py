"""Where built artefacts (the trained recognizer, converted models) are cached: ``$EMONEG_CACHE`` or the
user cache directory. Entries are written aside and renamed into place, so a crash never leaves a
half-written entry."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("EMONEG_CACHE")
    if root:
        return Path(root)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("emoneg-bench"))


def cached_folder(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_dir()/name``, building it with ``build(tmp_folder)`` first if it does not exist."""
    target = cache_dir() / name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        build(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; theirs is identical
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
