"""Upload a validated release to the Hugging Face Hub as a dataset repository, tagged ``v<version>``.

Nothing else in the toolkit needs the network; ``huggingface_hub`` is imported only here, and only when
an upload is really asked for (a dry run just describes it). A version is immutable: a release whose tag
is already on the Hub is refused before anything is uploaded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from emoneg_bench.errors import EmoNegError, InputError

from .card import MANIFEST
from .validate import validate_release

REPO_PART = r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^{REPO_PART}/{REPO_PART}$")
LISTED_PROBLEMS = 5


def publish(path: str | Path, repo_id: str, *, dry_run: bool = False, token: str | None = None,
            private: bool = False) -> str:
    """Validate the release at ``path`` and upload it to the dataset repository ``repo_id`` (``ORG/NAME``),
    tagged ``v<version>``. Returns what was done (or, with ``dry_run``, what would be done)."""
    root = Path(path)
    if not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise InputError(f"expected a Hub repository id ORG/NAME (letters, digits, '-', '_', '.'), got {repo_id!r}")
    problems = validate_release(root)
    if problems:
        listed = "; ".join(str(p) for p in problems[:LISTED_PROBLEMS])
        more = f" (and {len(problems) - LISTED_PROBLEMS} more)" if len(problems) > LISTED_PROBLEMS else ""
        raise InputError(f"the release is not valid, nothing was uploaded: {listed}{more}", file=str(root))
    version = json.loads((root / MANIFEST).read_text())["version"]
    tag = f"v{version}"
    files = [p for p in root.rglob("*") if p.is_file()]
    size = _human_size(sum(p.stat().st_size for p in files))
    url = f"https://huggingface.co/datasets/{repo_id}"
    if dry_run:
        return (f"dry run: would publish {root.resolve().name} to {url} ({'private' if private else 'public'})\n"
                f"  tag: {tag}\n  files: {len(files)} ({size})\n  commit message: Release {version}")
    _upload(root, repo_id, version, tag, token=token or os.environ.get("HF_TOKEN"), private=private)
    return f"published {len(files)} files ({size}) to {url} and tagged {tag}"


def _upload(root: Path, repo_id: str, version: str, tag: str, *, token: str | None, private: bool) -> None:
    import huggingface_hub
    from huggingface_hub import errors

    # Everything the Hub client raises for a refused, failed or impossible request; our own bugs still
    # surface with their traceback.
    hub_errors = (OSError, ValueError, getattr(errors, "HTTPError", OSError))
    if huggingface_hub.constants.is_offline_mode():
        raise EmoNegError("cannot publish while HF_HUB_OFFLINE is set; unset it to upload to the Hub")
    api = huggingface_hub.HfApi(token=token)
    try:
        try:
            existing = {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}
        except errors.RepositoryNotFoundError:
            existing = set()
        if tag in existing:
            raise InputError(f"{repo_id} already has tag {tag} and versions are immutable; bump `version` in "
                             "the builder config and build a new release")
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        commit = api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="dataset",
                                   commit_message=f"Release {version}")
        api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid)
    except EmoNegError:
        raise
    except hub_errors as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EmoNegError(f"could not publish to {repo_id} on the Hub: {reason}") from None


def _human_size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    size, units = n / 1000, ["kB", "MB", "GB", "TB"]
    while size >= 1000 and len(units) > 1:
        size, units = size / 1000, units[1:]
    return f"{size:.1f} {units[0]}"
