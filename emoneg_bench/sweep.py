"""The fixed-emotion sweep: the teacher shows one emotion throughout against the training personas,
once per emotion, on the same tasks — the per-emotion outcome table of the dataset card and demo."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .agents.personas import PersonaAgent, persona_names
from .agents.teacher import FixedSchedule, TeacherAgent
from .domains import generate_scenarios, scenario_split
from .domains.base import Scenario
from .emotions import GOEMOTIONS
from .engine import Engine, Recognizer
from .negotiation import Ending, Episode, Role, Task


@dataclass(frozen=True)
class EmotionOutcome:
    domain: str
    emotion: str
    episodes: int
    mean_utility: float
    agreement_rate: float
    walkaway_rate: float
    mean_rounds: float
    fidelity: float  # share of the focal messages whose perceived emotion is the declared one


def fixed_emotion_tasks(pool: Sequence[Scenario], personas: Sequence[str], episodes_per_persona: int,
                        first_seed: int = 0) -> list[Task]:
    """The tasks every emotion of a sweep is played on: ``episodes_per_persona`` per persona, walking
    through ``pool`` so personas meet different scenarios; the same for every emotion, so the emotion is
    the only thing that differs between rows of the table."""
    return [Task(pool[(p * episodes_per_persona + k) % len(pool)], persona, first_seed + k)
            for p, persona in enumerate(personas) for k in range(episodes_per_persona)]


def sweep_tasks(domain: str, personas: Sequence[str], episodes_per_persona: int, seed: int) -> list[Task]:
    """Sweep tasks on the training scenarios of ``domain``."""
    scenarios = generate_scenarios(domain, 100, seed)
    train = [s for i, s in enumerate(scenarios, 1) if scenario_split(i, len(scenarios)) == "train"]
    return fixed_emotion_tasks(train, personas, episodes_per_persona, seed)


def emotion_sweep(recognizer: Recognizer, domains: Iterable[str], emotions: Sequence[str] = GOEMOTIONS,
                  personas: Sequence[str] | None = None, episodes_per_persona: int = 8, seed: int = 0,
                  max_turns: int = 30, progress=None) -> list[EmotionOutcome]:
    personas = list(personas or persona_names(held_out=False))
    engine = Engine(recognizer, max_turns=max_turns)
    outcomes = []
    for domain in domains:
        tasks = sweep_tasks(domain, personas, episodes_per_persona, seed)
        for emotion in emotions:
            episodes = list(engine.run(tasks, TeacherAgent(FixedSchedule(emotion)), PersonaAgent(), progress=progress))
            outcomes.append(summarise(domain, emotion, episodes))
    return outcomes


def summarise(domain: str, emotion: str, episodes: Sequence[Episode]) -> EmotionOutcome:
    n = len(episodes)
    endings = defaultdict(int)
    for episode in episodes:
        endings[episode.outcome.ending] += 1
    return EmotionOutcome(
        domain=domain,
        emotion=emotion,
        episodes=n,
        mean_utility=sum(e.outcome.utility for e in episodes) / n,
        agreement_rate=endings[Ending.AGREEMENT] / n,
        walkaway_rate=endings[Ending.WALKAWAY] / n,
        mean_rounds=sum(e.outcome.rounds for e in episodes) / n,
        fidelity=_fidelity(episodes),
    )


def _fidelity(episodes: Sequence[Episode]) -> float:
    focal = [u for e in episodes for u in e.turns_of(Role.FOCAL)]
    return sum(u.perceived_emotion == u.declared_emotion for u in focal) / max(1, len(focal))


def format_table(outcomes: Sequence[EmotionOutcome]) -> str:
    """Emotion rows × domain columns of ``utility agree% walk%``, plus the across-domain mean utility and
    expression fidelity (perceived == declared)."""
    domains = list(dict.fromkeys(o.domain for o in outcomes))
    emotions = list(dict.fromkeys(o.emotion for o in outcomes))
    cell = {(o.domain, o.emotion): o for o in outcomes}
    width = 19
    header = f"{'emotion':<15}" + "".join(f"{d:>{width}}" for d in domains) + f"{'mean U':>9}{'fidelity':>10}"
    sub = f"{'':<15}" + "".join(f"{'U  agree  walk':>{width}}" for _ in domains)
    lines = [header, sub, "-" * len(header)]
    for emotion in sorted(emotions, key=lambda e: -sum(cell[d, e].mean_utility for d in domains)):
        row = f"{emotion:<15}"
        for d in domains:
            o = cell[d, emotion]
            row += f"{o.mean_utility:>{width - 12}.3f}{o.agreement_rate:>6.0%}{o.walkaway_rate:>6.0%}"
        row += f"{sum(cell[d, emotion].mean_utility for d in domains) / len(domains):>9.3f}"
        row += f"{sum(cell[d, emotion].fidelity for d in domains) / len(domains):>10.0%}"
        lines.append(row)
    return "\n".join(lines)
