"""Finishing a release: the small configs (scenarios, tasks), statistics computed with DuckDB from the
written shards, the dataset card (``README.md`` with YAML front matter), ``MANIFEST.json`` and
``CHANGELOG.md``. Everything is derived from the files, so a merged build and a single build finish
with the same bytes."""

from __future__ import annotations

import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

from emoneg_bench import __version__, schema
from emoneg_bench.agents.personas import get_persona, persona_names
from emoneg_bench.domains import get_domain
from emoneg_bench.features import FAMILIES, STATE_FEATURES
from emoneg_bench.hashing import sha256_file

from . import plan
from .build import BUILD_CONFIG, UNITS, shard_path, write_json, write_parquet
from .config import BuildConfig

CARD, MANIFEST, CHANGELOG = "README.md", "MANIFEST.json", "CHANGELOG.md"


def finalize(root: Path, config: BuildConfig, work: Sequence[plan.Unit], source: str | None = None) -> None:
    scenarios = plan.scenario_splits(config)
    for split, items in scenarios.items():
        write_parquet([schema.scenario_row(s, split) for s in items], "scenarios",
                      shard_path(root, "scenarios", split, 0, 1))
    for split, tasks in plan.all_tasks(config).items():
        write_parquet([schema.task_row(t, split) for t in tasks], "tasks", shard_path(root, "tasks", split, 0, 1))
    shards = _shards(root)
    stats = _statistics(root, config.teacher_role)
    (root / CARD).write_text(render_card(config, shards, stats))
    write_json(root / MANIFEST, manifest(config, shards, source))
    (root / CHANGELOG).write_text(
        f"# Changelog\n\n## {config.version}\n\n- Built by emoneg-bench {__version__} from builder config "
        f"`{source or 'unknown'}`{f' (profile {config.profile})' if config.profile else ''}.\n"
        f"- {stats['episodes']['train'] + stats['episodes']['validation']:,} teacher episodes, "
        f"{stats['episodes'].get('fixed_emotion_sweep', 0):,} fixed-emotion sweep episodes.\n")
    shutil.rmtree(root / UNITS, ignore_errors=True)
    (root / BUILD_CONFIG).unlink(missing_ok=True)


def _shards(root: Path) -> dict[str, dict]:
    """Every Parquet file: config, split, rows, bytes, sha256 (sorted by path)."""
    import pyarrow.parquet as pq

    shards = {}
    for path in sorted((root / "data").glob("*/*.parquet")):
        config_name, split = path.parent.name, path.name.rsplit("-", 3)[0]
        shards[str(path.relative_to(root))] = {
            "config": config_name, "split": split, "rows": pq.ParquetFile(path).metadata.num_rows,
            "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return shards


# The teacher's utility per episode, by the side it played: the counterparty's is 1 − focal utility on a
# deal (``rewards.own_utility``) and 0 without one, like the focal agent's.
TEACHER_UTILITY = {"focal": "utility",
                   "counterparty": "CASE WHEN ending_name = 'agreement' THEN 1 - utility ELSE 0 END"}


def _statistics(root: Path, teacher_role: str) -> dict:
    """Counts and outcomes of the written shards; message statistics are of the teacher's side."""
    import duckdb

    con = duckdb.connect()
    episodes = f"read_parquet('{root}/data/episodes/*.parquet')"
    teacher_train = (f"(SELECT UNNEST(turns) AS t FROM read_parquet('{root}/data/episodes/train-*.parquet')) "
                     f"WHERE t.role = '{teacher_role}'")
    utility = TEACHER_UTILITY[teacher_role]
    stats: dict = {"episodes": dict(con.sql(f"SELECT split, count(*) FROM {episodes} GROUP BY split").fetchall())}
    stats["endings"] = con.sql(
        f"SELECT split, ending_name, count(*) FROM {episodes} GROUP BY ALL ORDER BY ALL").fetchall()
    stats["utility"] = con.sql(
        f"SELECT domain, avg({utility}), avg((ending_name = 'agreement')::INT) FROM {episodes} "
        "WHERE split = 'train' GROUP BY domain ORDER BY domain").fetchall()
    stats["judge"] = con.sql(f"SELECT t.judge_score, count(*) FROM {teacher_train} GROUP BY 1 ORDER BY 1").fetchall()
    stats["fidelity"] = con.sql(
        f"SELECT avg((t.declared_emotion_name = t.perceived_emotion_name)::INT), "
        f"avg((t.perceived_emotion_name = 'neutral')::INT) FROM {teacher_train}").fetchall()[0]
    stats["sweep"] = con.sql(
        f"SELECT replace({teacher_role}_agent, 'teacher:fixed-', '') AS emotion, domain, avg({utility}), "
        "avg((ending_name = 'agreement')::INT), avg((ending_name = 'walkaway')::INT), count(*) "
        f"FROM {episodes} WHERE split = 'fixed_emotion_sweep' GROUP BY ALL ORDER BY ALL").fetchall()
    # headroom for emotion selection, per persona: random emotions (the train split) and each fixed emotion
    stats["random_by_persona"] = dict(con.sql(
        f"SELECT persona, avg({utility}) FROM {episodes} WHERE split = 'train' GROUP BY 1 ORDER BY 1").fetchall())
    stats["sweep_by_persona"] = con.sql(
        f"SELECT persona, replace({teacher_role}_agent, 'teacher:fixed-', '') AS emotion, avg({utility}), count(*) "
        f"FROM {episodes} WHERE split = 'fixed_emotion_sweep' GROUP BY ALL ORDER BY ALL").fetchall()
    from emoneg_bench.perception.recognizer import default_recognizer

    stats["recognizer"] = default_recognizer().metrics
    return stats


def _headroom_rows(stats: dict) -> list[tuple]:
    """Per persona: random, the overall best fixed emotion, the persona's best fixed emotion, and the gap."""
    by_persona: dict[str, dict[str, float]] = {}
    for persona, emotion, u, _ in stats["sweep_by_persona"]:
        by_persona.setdefault(persona, {})[emotion] = u
    if not by_persona:
        return []
    emotions = sorted({e for scores in by_persona.values() for e in scores})
    overall = max(emotions, key=lambda e: sum(s.get(e, 0.0) for s in by_persona.values()))
    rows = []
    for persona, scores in sorted(by_persona.items()):
        best = max(scores, key=scores.get)
        random_ = stats["random_by_persona"].get(persona)
        rows.append((persona, "—" if random_ is None else f"{random_:.3f}",
                     f"{scores.get(overall, float('nan')):.3f} ({overall})", f"{scores[best]:.3f} ({best})",
                     "—" if random_ is None else f"{scores[best] - random_:+.3f}"))
    return rows


def dataset_info(shards: dict[str, dict]) -> list[dict]:
    info = []
    for config_name in schema.CONFIGS:
        splits: dict[str, dict] = {}
        for meta in shards.values():
            if meta["config"] == config_name:
                entry = splits.setdefault(meta["split"], {"name": meta["split"], "num_bytes": 0, "num_examples": 0})
                entry["num_bytes"] += meta["bytes"]
                entry["num_examples"] += meta["rows"]
        size = sum(s["num_bytes"] for s in splits.values())
        info.append({"config_name": config_name, "features": schema.features(config_name)._to_yaml_list(),
                     "splits": list(splits.values()), "download_size": size, "dataset_size": size})
    return info


def card_configs(shards: dict[str, dict]) -> list[dict]:
    configs = []
    for config_name in schema.CONFIGS:
        splits = list(dict.fromkeys(m["split"] for m in shards.values() if m["config"] == config_name))
        entry = {"config_name": config_name,
                 "data_files": [{"split": s, "path": f"data/{config_name}/{s}-*"} for s in splits]}
        if config_name == "episodes":
            entry["default"] = True
        configs.append(entry)
    return configs


def manifest(config: BuildConfig, shards: dict[str, dict], source: str | None) -> dict:
    from importlib import metadata, resources

    data = resources.files("emoneg_bench").joinpath("data")
    return {
        "name": config.name,
        "release": config.release_name,
        "version": config.version,
        "builder_config": config.to_dict(),
        "builder_config_file": source,
        "seeds": {"build": config.seed, "episode_seeds": config.episodes_per_scenario, "task_seeds": config.task_seeds},
        "toolkit_version": __version__,
        "creation_inputs": {
            "phrases.json sha256": _sha256_bytes(data.joinpath("phrases.json").read_bytes()),
            "expressions.json sha256": _sha256_bytes(data.joinpath("expressions.json").read_bytes()),
            "python": platform.python_version(),
            **{package: metadata.version(package) for package in ("pyarrow", "datasets", "scikit-learn", "numpy")},
        },
        "shards": {path: {k: meta[k] for k in ("config", "split", "rows", "sha256")} for path, meta in shards.items()},
    }


def _sha256_bytes(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def render_card(config: BuildConfig, shards: dict[str, dict], stats: dict) -> str:
    import yaml

    n_episodes = sum(stats["episodes"].values())
    front = {
        "license": config.license,
        "language": ["en"],
        "pretty_name": f"{_title(config)} {config.version}",
        "task_categories": ["text-generation", "reinforcement-learning"],
        "tags": ["negotiation", "emotion", "offline-rl", "dialogue", "synthetic", "emoneg-bench"],
        "size_categories": [_size_category(n_episodes)],
        "configs": card_configs(shards),
        "dataset_info": dataset_info(shards),
    }
    yaml_block = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{yaml_block}---\n\n{_prose(config, shards, stats)}"


def _title(config: BuildConfig) -> str:
    if config.teacher_role == "focal":
        return "EmoNeg-Bench trajectories"
    return "EmoNeg-Bench counterparty-role trajectories"


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _prose(config: BuildConfig, shards: dict[str, dict], stats: dict) -> str:
    e = stats["episodes"]
    n_episodes = sum(e.values())
    domains = ", ".join(f"`{d}` ({get_domain(d).paper_name}, {get_domain(d).unit})" for d in config.domains)
    rows_by_config = {c: sum(m["rows"] for m in shards.values() if m["config"] == c) for c in schema.CONFIGS}
    judge_total = sum(n for _, n in stats["judge"]) or 1
    judge_rows = [(score if score is not None else "missing", n, f"{n / judge_total:.1%}") for score, n in stats["judge"]]
    fidelity, perceived_neutral = stats["fidelity"]
    sweep_domains = list(dict.fromkeys(domain for _, domain, *_ in stats["sweep"]))
    sweep_cells = {(emotion, domain): f"{u:.3f} ({agree:.0%} / {walk:.0%})"
                   for emotion, domain, u, agree, walk, _ in stats["sweep"]}
    sweep_rows = [(emotion, *(sweep_cells.get((emotion, d), "—") for d in sweep_domains))
                  for emotion in dict.fromkeys(emotion for emotion, *_ in stats["sweep"])]
    sweep_n = sum(n for *_, n in stats["sweep"])
    headroom_rows = _headroom_rows(stats)
    recognizer_rows = [(source, m["n"], f"{m['accuracy']:.1%}", f"{m['family_accuracy']:.1%}")
                       for source, m in stats["recognizer"].items()]
    personas = ", ".join(f"`{p}`" for p in config.corpus_personas)
    sampled = (f" and {config.corpus_sampled} slots that each draw a fresh member of the sampled population "
               "(`sampled-<hex>`: knobs drawn uniformly from the box the training personas span)"
               if config.corpus_sampled else "")
    held_out = ", ".join(f"`{p}` ({get_persona(p).description.rstrip('.').lower()})"
                         for p in persona_names(held_out=True))
    name = config.release_name
    role = config.teacher_role  # the side the teacher played, whose messages the statistics describe
    if role == "focal":
        teacher_side, persona_side, opponent, sides = "Focal agent", "Counterparties", "counterparty", ""
    else:
        teacher_side, persona_side, opponent = "Counterparty", "Focal agents", "focal agent"
        sides = ("\n\nIn this release the teacher plays the **counterparty** and the personas play the focal "
                 "agent: `transitions`\nand `sft` hold the counterparty's decisions (`role` = `counterparty`), "
                 "the data for training counterparty-role\npolicies. The evaluation `tasks` are the usual ones "
                 "(a focal policy against each task's counterparty).")
    return f"""# {_title(config)} {config.version}

Emotion-labelled negotiation trajectories for studying **emotion as a strategic action** in adversarial
negotiation between language-model agents: which emotion to show at each turn (offline RL) and how to
express it (supervised fine-tuning, judge-based policy optimisation). Built with EmoNeg-Bench
{__version__}, fully offline and reproducible: the same
builder config and seed give byte-identical Parquet shards (see `MANIFEST.json`).

{n_episodes:,} episodes in {len(config.domains)} domains: {domains}. Each domain is a bargain over one number between
a **focal agent** and a **counterparty**; focal utility of a deal at `x` is `clip((b − x)/(b − a), 0, 1)`
with `a` the focal agent's anchor and `b` the counterparty's, whichever way the focal agent wants the
number to move (polarity).{sides}

## Loading

```python
from datasets import load_dataset

episodes = load_dataset("{name}", "episodes")          # or the path of this folder
transitions = load_dataset("{name}", "transitions", split="train")
print(episodes["train"][0]["turns"][0]["text"])
```

```sql
-- DuckDB, straight from the Parquet files
SELECT domain, persona, avg(utility) AS utility, avg((ending_name = 'walkaway')::INT) AS walkaway_rate
FROM read_parquet('{name}/data/episodes/train-*.parquet')
GROUP BY ALL ORDER BY domain, utility DESC;

SELECT t.declared_emotion_name, avg((t.declared_emotion_name = t.perceived_emotion_name)::INT) AS fidelity
FROM (SELECT UNNEST(turns) AS t FROM read_parquet('{name}/data/episodes/train-*.parquet'))
WHERE t.role = '{role}' GROUP BY 1 ORDER BY 2;
```

## Configs and splits

| config | rows | what a row is |
|---|---:|---|
| `episodes` (default) | {rows_by_config['episodes']:,} | one negotiation: scenario, persona, seeds, outcome (ending, agreed value, utility, rounds) and its `turns` |
| `transitions` | {rows_by_config['transitions']:,} | one {role} decision: state (named features), action (emotion), reward, next state, terminated, truncated, judge score |
| `sft` | {rows_by_config['sft']:,} | one {role} move as chat `messages` (system prompt with the rules and the structured reply format; the recent transcript with a one-line summary of earlier offers; the emotion instruction; the move as one JSON object `{{"act", "offer", "message"}}`), with emotion, advantage and judge quality |
| `scenarios` | {rows_by_config['scenarios']:,} | one scenario with its typed fields (union over domains, null where a field is not the domain's) |
| `tasks` | {rows_by_config['tasks']:,} | one evaluation task: scenario × persona × seed |

Splits: `train` ({e.get('train', 0):,} episodes) and `validation` ({e.get('validation', 0):,}) are teacher
trajectories on training scenarios (scenarios 1–{config.training_scenarios - config.validation_scenarios}
and {config.training_scenarios - config.validation_scenarios + 1}–{config.training_scenarios} of each domain);
`fixed_emotion_sweep` ({e.get('fixed_emotion_sweep', 0):,}) shows one emotion throughout, for the per-emotion
table below. The `tasks` config also has `test` (held-out scenarios {config.training_scenarios + 1}–{config.scenario_count},
training personas) and `test_unseen_counterparty` (the same scenarios against held-out personas). **Test
scenarios never appear in any trajectory.**

## How it was generated

- **Scenarios**: {config.scenario_count} per domain from the seeded generator (seed {config.seed}); anchors in
  the ranges of the published scenario tables.
- **{teacher_side} (teacher)**: `{config.teacher_kind}` teacher; its offers follow its own time-dependent
  concession tactic (drawn per episode) and are independent of the emotion it shows; the emotion at each turn
  comes from the schedule `{config.teacher_schedule}` (uniform over the 28 GoEmotions labels); messages are
  composed from an emotion-conditioned phrasing bank (7,600 surface forms per domain, role and emotion).
- **{persona_side}**: the training personas {personas}{sampled}, assigned round-robin, {config.episodes_per_scenario}
  emotion seeds per scenario. Personas are parametric, emotion-sensitive negotiators (time-dependent
  concession toward a hidden reservation value; the *perceived* emotion family changes concessions and the
  walk-away hazard). Held out for `test_unseen_counterparty`: {held_out}.
- **Engine**: the focal agent opens, strict alternation, at most {config.max_turns} messages. Endings are kept
  apart: `agreement`, `walkaway`, `turn_limit` (truncation) and `breakdown`.

## Schema notes

- Emotions are `ClassLabel` over GoEmotions-28 (`-1` = none) with the label also as a string column
  (`*_name`). `declared_emotion` is what the speaker was asked to show; `perceived_emotion` what the recognizer
  reads in the text, with `perceived_confidence`.
- Offers are in the domain unit (`unit` column): days, minutes, or minutes past 9 PM for bedtimes.
  `offer_status` says where a value came from (`structured`: the agent's own channel; `ok`: parsed from text).
- `state`/`next_state` have {len(STATE_FEATURES)} named features (no counterparty identity), in this order:
  {', '.join(f'`{f}`' for f in STATE_FEATURES[:7])}; one-hot `opponent_emotion=<label>` (the last message
  heard, as perceived) and `previous_own_emotion=<label>` (the last one declared) over the 28 labels; then the
  emotion history the {opponent} reacts to, per family ({', '.join(f'`{f}`' for f in FAMILIES)}):
  `own_family_count=<family>` (own messages so far as the {opponent} perceived them),
  `own_family_recency=<family>` (0.5 to the power of own messages since its latest use; 0 = never),
  `own_family_streak` (consecutive latest own messages in one family), `response_concession_after=<family>`
  (the {opponent}'s concession in its reply to our latest message of that family) and one-hot
  `response_family_after=<family>=<family>` (the family it displayed in that reply). Offers are in the
  deciding agent's own utility space (1 = own anchor, 0 = the other side's).
- `reward` = time-weighted net concession (opponent's concession − own, weight 1 → 0.5 over the episode),
  plus the agreement's utility at the end, −0.5 for a walk-away or breakdown, 0 at the turn limit.
  `utility_reward` = the evaluation metric as a reward: the agreement's utility at the end, 0 otherwise.
- `advantage` (sft) = discounted return-to-go (γ = 0.99) minus the mean return-to-go at the same turn of the
  same scenario across its emotion seeds (a Monte-Carlo baseline; baselines may recompute it with IQL).

## Emotion-label provenance

Declared labels are exact (they are the teacher's instructions). Perceived labels come from the toolkit's
built-in recognizer (TF-IDF + logistic regression over GoEmotions-28, trained on the teacher's training
clauses and a separate expressions corpus). Its accuracy on text it never trained on:

{_table(("source", "n", "accuracy", "family accuracy"), recognizer_rows)}

Expression fidelity of the teacher in `train` (perceived == declared, {role} messages): **{fidelity:.1%}**;
{perceived_neutral:.1%} of {role} messages are perceived as neutral. {persona_side} react to the *perceived*
emotion only.

## Judge scores

Every {role} message has a rubric judge score from 1 to 10 (firmness that moves the {opponent} scores
high; large own concessions, unreadable offers and messages followed by a walk-away score low; missing when
the judge cannot score). Distribution in `train`:

{_table(("score", "messages", "share"), judge_rows)}

## Outcomes

Teacher vs training personas, `train` split:

{_table(("domain", f"mean {role} utility", "agreement rate"), [(d, f"{u:.3f}", f"{a:.0%}") for d, u, a in stats["utility"]])}

Endings by split:

{_table(("split", "ending", "episodes"), stats["endings"])}

## Per-emotion outcomes (fixed-emotion sweep)

The teacher shows one emotion throughout against every training persona on the same tasks; only the emotion
differs between rows ({sweep_n:,} episodes). Each cell: mean {role} utility (agreement rate / walk-away rate).
Sustained dominance (anger, annoyance…) overwhelms high-power personas and triggers
walk-aways; pleas help with trusting personas; apology and friendliness invite tougher counterparties.

{_table(("emotion", *sweep_domains), sweep_rows)}

## Headroom for emotion selection

How much choosing emotions can matter, per training persona, with this release's phrasing held fixed: the
{role}'s mean utility with uniformly random emotions (the `train` split), with the single emotion that is best
over all personas in the sweep, and with the emotion that is best for that persona (an upper reference that
knows the persona; a learned selector never sees who it faces). A selector that learns from these trajectories
should land between random and the reference; `emoneg score --table headroom` measures trained selectors the
same way on the evaluation tasks.

{_table(("persona", "random", "best fixed overall", "best fixed for the persona", "headroom"), headroom_rows)}

## Known limitations

- The {persona_side.lower()} are simulated: their reactions to emotions follow the directions reported in the
  negotiation literature, but the magnitudes are documented modelling choices, not measurements of people.
- Text comes from a composed phrasing bank, not from people or large models; lexical variety is large but
  bounded. The recognizer's perceived labels are noisy (see the accuracy table) — by design the {opponent}
  only reacts to what it perceives.
- The rubric judge is a deterministic heuristic of negotiation progress, not a human rating.

## Licence and citation

{config.license}. Generated with EmoNeg-Bench; the method follows EmoDistill (arXiv 2605.26785).
"""
