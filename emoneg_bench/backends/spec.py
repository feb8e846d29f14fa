"""Model specs as used on the command line (``lm:<spec>``) and in build configs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import InputError
from .base import Backend

SPEC_HELP = ("smollm2 | a local model folder (optionally FOLDER+adapter=ADAPTER_FOLDER) | "
             "an endpoint URL http(s)://HOST/v1?model=NAME | llama-server:smollm2 (optionally +adapter=ADAPTER_FOLDER) "
             "or llama-server:FILE.gguf (make setup-server)")
SERVER = "llama-server:"


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
    if spec.startswith(SERVER):
        return _server_backend(spec.removeprefix(SERVER), **options)
    from .local import LocalHFBackend

    model, _, adapter = spec.removeprefix("hf:").partition("+adapter=")
    if model == "smollm2":
        from .smollm2 import smollm2_folder

        model = str(smollm2_folder())
    elif not Path(model).is_dir():
        raise InputError(f"unknown model spec {spec!r}; expected {SPEC_HELP}")
    return LocalHFBackend(model, adapter=adapter or None, **options)


def _server_backend(spec: str, **options) -> Backend:
    """``smollm2[+adapter=FOLDER]`` or ``FILE.gguf[+adapter=LORA.gguf]`` served by a managed llama-server."""
    from ..hashing import sha256_file
    from .llama_server import LlamaServerBackend, lora_gguf

    model, _, adapter = spec.partition("+adapter=")
    if model == "smollm2":
        from .smollm2 import GGUF_NAME, GGUF_SHA256, gguf_path, smollm2_folder

        gguf, digest = gguf_path(), GGUF_SHA256
        lora, adapter_digest = lora_gguf(adapter, smollm2_folder()) if adapter else (None, None)
        name = GGUF_NAME.removesuffix(".gguf") + (f"+{Path(adapter).parent.name}" if adapter else "")
    elif model.endswith(".gguf") and Path(model).is_file():
        gguf, name, digest = Path(model), Path(model).stem, sha256_file(Path(model))
        if adapter and not (adapter.endswith(".gguf") and Path(adapter).is_file()):
            raise InputError(f"with a GGUF model the adapter must be a GGUF LoRA file, got {adapter!r}")
        lora, adapter_digest = (Path(adapter), sha256_file(Path(adapter))) if adapter else (None, None)
    else:
        raise InputError(f"unknown llama-server model {spec!r}; expected smollm2 or an existing FILE.gguf")
    backend = LlamaServerBackend(gguf, name=name, lora=lora, **options)
    backend.model_sha256, backend.adapter_sha256 = digest, adapter_digest
    return backend
