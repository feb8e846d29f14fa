"""How a language-model negotiator sees a negotiation: one system message (role, scenario and, when
emotion-conditioned, the uniform emotion instruction) and one user message (the transcript so far).

The SFT config of a release is written with exactly these messages, so a model trained on a release
is prompted the same way when it plays.
"""

from __future__ import annotations

from collections.abc import Sequence

from .domains.base import Domain, Scenario
from .emotions import emotion_instruction
from .negotiation import Role, Utterance
from .units import Unit

_OFFER_HINT = {Unit.DAYS: "a number of days", Unit.MINUTES: "a number of minutes", Unit.BEDTIME: "a clock time"}


def negotiator_messages(domain: Domain, role: Role, scenario: Scenario, history: Sequence[Utterance],
                        emotion: str | None) -> list[dict[str, str]]:
    system = domain.system_prompt(str(role), scenario)
    if emotion is not None:
        system = f"{system} {emotion_instruction(emotion)}"
    names = {Role.FOCAL: domain.focal_role, Role.COUNTERPARTY: domain.counterparty_role}
    lines = [f"{names[u.role].capitalize()}: {u.text}" for u in history]
    transcript = "\n".join(lines) if lines else "(You speak first.)"
    user = (f"Conversation so far:\n{transcript}\n\nWrite your next message as the {names[role]}, in one or two "
            f"sentences, stating your offer as {_OFFER_HINT[domain.unit]}.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
