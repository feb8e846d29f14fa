"""Model specs as used on the command line (``lm:<spec>``) and in build configs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import InputError
from .base import Backend

SPEC_HELP = ("smollm2 | a local model folder (optionally FOLDER+adapter=ADAPTER_FOLDER) | "
             "an endpoint URL http(s)://HOST/v1?model=NAME")


def load_backend(spec: str, **options) -> Backend:
    """``smollm2``, a local folder (``hf:`` prefix optional, ``+adapter=PATH`` suffix), or an
    OpenAI-compatible endpoint URL with ``?model=NAME``."""
    if spec.startswith(("http://", "https://")):
        from .openai_http import OpenAIChatBackend

        parts = urlsplit(spec)
        model = parse_qs(parts.query).get("model", [None])[0]
        if not model:
            raise InputError(f"endpoint spec {spec!r} needs the model name: {spec}?model=NAME")
        return OpenAIChatBackend(urlunsplit(parts._replace(query="", fragment="")), model, **options)
    from .local import LocalHFBackend

    model, _, adapter = spec.removeprefix("hf:").partition("+adapter=")
    if model == "smollm2":
        from .smollm2 import smollm2_folder

        model = str(smollm2_folder())
    elif not Path(model).is_dir():
        raise InputError(f"unknown model spec {spec!r}; expected {SPEC_HELP}")
    return LocalHFBackend(model, adapter=adapter or None, **options)
