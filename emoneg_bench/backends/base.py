"""One small generation interface for every language-model backend: a batch of chat conversations and
sampling parameters in, one :class:`Generation` per conversation out. A failed request is a
``Generation`` with an ``error`` (the caller decides what that means for its episode), never an
exception that takes the whole batch down."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 → greedy decoding (deterministic)
    top_p: float = 1.0
    seed: int = 0  # used when sampling, where the backend allows

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Generation:
    text: str | None  # None when the request failed
    error: str | None = None  # one sentence: what failed and why
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class Backend(ABC):
    """``name`` identifies the model (and adapter) in records, e.g. ``hf:smollm2-135m-instruct``; ``kind`` the
    engine that serves it (recorded in provenance)."""

    name: str
    kind: str = "custom"

    @abstractmethod
    def generate(self, conversations: Sequence[Sequence[Message]], params: SamplingParams,
                 schemas: Sequence[dict | None] | None = None,
                 sessions: Sequence[Hashable | None] | None = None) -> list[Generation]:
        """One generation per conversation, in order. ``schemas``: a JSON schema per conversation (or None) that
        the reply must follow, enforced while decoding where the backend can (a grammar engine locally,
        ``response_format`` over HTTP). ``sessions``: a key per conversation (one per live episode) whose next
        prompt extends this one, so a backend may keep its cache; ignored where there is nothing to keep."""
