"""Writing a command's outputs without destroying an input or leaving half a file behind.

Rules every command follows (the CLI exposes ``--overwrite`` where an output may exist):

- An existing output is refused unless the user passes ``--overwrite``.
- An output may never be one of the command's inputs, lie inside a release folder it reads, or (for a
  folder output) contain an input: replacing it would destroy what the command is reading.
- Files are written aside (a hidden temporary next to the target) and renamed into place; a main output
  and its side files (an import's repairs and rejections) are all written first and renamed together,
  and a side file the new run no longer produces is removed with them, so no stale report survives.
- A run folder that is replaced (``--overwrite`` on a finished training run) is trained aside and
  swapped in when the run has finished, so the old run stays whole until the new one is.
- A build holds a lock next to the release it writes: a second build of the same release says which
  process is building it and changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

OVERWRITE_HINT = "pass --overwrite to replace it"


def _is_release(folder: Path) -> bool:
    return (folder / "MANIFEST.json").is_file()


def check_output(path: str | os.PathLike, *, overwrite: bool = False, reads: Sequence[str | os.PathLike] = (),
                 what: str = "output") -> Path:
    """``path`` as an output that may be written: not an input (see the module docstring), and new
    unless ``overwrite``. Nothing is written here."""
    path = Path(path)
    target = path.resolve()
    for given in reads:
        source = Path(given).resolve()
        if target == source:
            raise InputError(f"the {what} is also an input of this command; writing it would destroy what is being "
                             f"read (choose another path)", file=str(path))
        if target.is_relative_to(source) and _is_release(source):
            raise InputError(f"the {what} lies inside the release {given}, which this command reads; releases are "
                             "immutable (choose a path outside it)", file=str(path))
        if source.is_relative_to(target):
            raise InputError(f"the {what} contains {given}, an input of this command; replacing it would destroy "
                             "what is being read (choose another path)", file=str(path))
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise InputError(f"the {what} already exists; {OVERWRITE_HINT}", file=str(path))
    return path


def write_json(path: Path, data) -> None:
    """``data`` as indented, key-sorted JSON at ``path``, written aside and renamed (see :func:`write_together`)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_together({Path(path): lambda tmp: tmp.write_text(text)})


def write_together(outputs: Mapping[Path, Callable[[Path], None] | None]) -> None:
    """Write every output whose writer is given (``writer(temporary_path)``) aside, then rename them all
    into place and remove the outputs mapped to ``None``. A failing writer leaves every target as it was."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, writer in outputs.items():
            if writer is None:
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            staged.append((Path(tmp), target))
            writer(Path(tmp))
        for tmp, target in staged:
            os.replace(tmp, target)
        staged.clear()
        for target, writer in outputs.items():
            if writer is None and (target.is_file() or target.is_symlink()):
                target.unlink()
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def run_folder(path: str | os.PathLike, *, finished: str, overwrite: bool,
               reads: Sequence[str | os.PathLike] = ()) -> Path:
    """The folder a training run writes into. A new folder, or one holding an interrupted run (no
    ``finished`` marker yet, which resumes), is the folder itself; a finished run is refused unless
    ``overwrite``, and then the new run is trained in a hidden folder next to it that
    :func:`commit_run_folder` swaps in (an interrupted overwrite resumes there)."""
    path = check_output(path, overwrite=True, reads=reads, what="run folder")
    if path.exists() and not path.is_dir():
        raise InputError("the run folder is a file; expected a folder (choose another path)", file=str(path))
    if not (path / finished).exists():
        return path
    if not overwrite:
        raise InputError(f"the run folder holds a finished run ({finished}); {OVERWRITE_HINT}", file=str(path))
    return path.with_name(f".{path.name}.overwrite")


def commit_run_folder(work: Path, path: str | os.PathLike) -> None:
    """Put a run trained aside by :func:`run_folder` in place of the old one (no-op when they are one)."""
    path = Path(path)
    if work.resolve() == path.resolve():
        return
    old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    os.replace(path, old)
    os.replace(work, path)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def folder_lock(lock: Path, what: str) -> Iterator[None]:
    """Hold ``lock`` (a hidden file next to the folder being written) for the duration of the block. The
    lock is the operating system's (``flock``), so a killed holder never leaves a stale one; the file
    records the holder's PID for the message and is removed when the block ends."""
    import fcntl

    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(f"a build of {what} is in progress by PID {holder}; this command changed nothing (wait "
                             "for that build to finish, or stop it, then run this again)", file=str(lock.parent)) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file while we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.unlink(lock)
        os.close(fd)
