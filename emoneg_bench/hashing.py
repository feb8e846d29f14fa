"""sha256 of files, streamed (model weights and shards can be large)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def sha256_files(paths: Iterable[Path]) -> str:
    """One digest over the files' bytes, in the given order (a single file: its own ``sha256sum``)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_files([path])


def weights_sha256(folder: Path) -> str:
    """The fingerprint of a model or adapter folder: one digest over its ``*.safetensors`` files in name
    order (for a single-file model, the file's own ``sha256sum``)."""
    from .errors import InputError

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise InputError(f"{folder} has no *.safetensors weights to fingerprint")
    return sha256_files(files)
