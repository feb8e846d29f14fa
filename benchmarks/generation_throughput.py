"""Full 30-message negotiations per minute with SmolLM2-135M-Instruct as the focal agent (random emotions) against
the training personas, on CPU by default: the previous path and the new default side by side, in one run.

**Full length** (the default): every episode runs to the 30-message limit. Agreements, walk-aways and breakdowns
are recorded as they happen but do not end the episode (a failed request still does), so each path pays for
exactly what a 30-message negotiation costs it: 15 LM turns over a transcript growing to 29 messages.
``--natural`` ends episodes by the rules instead (the 2026-12-05/06 tables), where a path whose episodes break
down after five messages only ever reads short transcripts.

Paths (the same model, greedy decoding, engine and personas):

- ``baseline`` — the configuration before structured actions and KV reuse: float32, the ``text`` protocol, the
  whole transcript in every prompt, every prompt computed from scratch, 64 new tokens;
- ``default`` — the CPU default: ``dtype="auto"`` (bfloat16 where the CPU computes it natively), the
  ``structured`` protocol (grammar-constrained JSON, 128 new tokens at most; the 2026-12-05 figures used 96), the windowed, prefix-stable prompt,
  per-episode KV reuse, rows leaving the batch as they finish;
- ``server`` — llama.cpp's ``llama-server`` (``make setup-server``) managed by the toolkit, serving the same
  SmolLM2 weights as the Q4_1 GGUF they ship in, one slot per live episode (prompt cache), the same structured
  protocol and prompts, the schema enforced by the server (sent as the equivalent compact grammar).

At each concurrency ``c``, ``max(c, 2)`` episodes are played in one lock-step batch (as ``emoneg eval`` plays
them); ``--refill`` keeps ``c`` episodes live instead, a finished episode's slot taking the next task, and
plays ``max(c · episodes-per-slot, 2)`` episodes. Printed per run:
wall seconds, episodes/min, the language model's messages per minute, the **30-message episodes/min** they
imply (LM messages/min ÷ 15, since the LM writes every other message of a 30-message negotiation; at full length
this is the episodes/min itself), tokens generated, and the endings (as first reached, at full length).

    python benchmarks/generation_throughput.py                          # baseline and default at 1, 8, 32
    python benchmarks/generation_throughput.py --paths default,server --concurrency 8 --threads 1
    python benchmarks/generation_throughput.py --natural --paths default --concurrency 32 --refill
"""

from __future__ import annotations

import argparse
import collections
import time

FULL_EPISODE_LM_MESSAGES = 15  # the LM's share of a 30-message negotiation


def tasks(count: int, seed: int):
    from emoneg_bench.agents.personas import persona_names
    from emoneg_bench.domains import domain_ids, generate_scenarios
    from emoneg_bench.negotiation import Task

    personas = persona_names(held_out=False)
    domains = domain_ids()
    scenarios = {d: generate_scenarios(d, count // len(domains) + 1, seed) for d in domains}
    return [Task(scenarios[domains[k % len(domains)]][k // len(domains)], personas[k % len(personas)], seed + k)
            for k in range(count)]


def agent(path: str, model: str, threads: int | None, concurrency: int):
    from emoneg_bench.agents.lm import LMNegotiator
    from emoneg_bench.backends.base import SamplingParams
    from emoneg_bench.backends.local import LocalHFBackend
    from emoneg_bench.backends.smollm2 import gguf_path, smollm2_folder

    if path == "server":
        from emoneg_bench.backends.llama_server import LlamaServerBackend

        backend = LlamaServerBackend(gguf_path() if model == "smollm2" else model, name="smollm2",
                                     slots=concurrency, threads=threads)
        return LMNegotiator(backend, "random", SamplingParams(max_new_tokens=128))
    folder = smollm2_folder() if model == "smollm2" else model
    if path == "baseline":
        backend = LocalHFBackend(folder, kv_reuse=False, threads=threads, batch_size=64, dtype="float32")
        return LMNegotiator(backend, "random", SamplingParams(max_new_tokens=64), protocol="text", window=10**6)
    backend = LocalHFBackend(folder, threads=threads, batch_size=64)
    return LMNegotiator(backend, "random", SamplingParams(max_new_tokens=128))


def full_length_engine(recognizer, max_turns: int):
    """An engine whose episodes run to the message limit: each episode's first ending is remembered in
    ``engine.first_endings`` (by task seed) but not acted on; a failed request still ends the episode."""
    from emoneg_bench.engine import Engine
    from emoneg_bench.negotiation import Ending

    class FullLengthEngine(Engine):
        def _record(self, episode, context, move, emotion, confidence):
            super()._record(episode, context, move, emotion, confidence)
            if episode.outcome is not None and episode.outcome.ending is not Ending.ERROR:
                self.first_endings.setdefault(episode.task.seed, episode.outcome.ending)
                episode.outcome = None
                episode.failed_offers = dict.fromkeys(episode.failed_offers, 0)

    engine = FullLengthEngine(recognizer, max_turns)
    engine.first_endings = {}
    return engine


def run(path: str, concurrency: int, model: str, threads: int | None, max_turns: int, recognizer,
        per_slot: int = 2, refill: bool = False, full: bool = True) -> dict:
    from emoneg_bench.agents.personas import PersonaAgent
    from emoneg_bench.engine import Engine
    from emoneg_bench.negotiation import Role

    focal = agent(path, model, threads, concurrency)
    counted = _Counting(focal)
    work = tasks(max(concurrency * per_slot if refill else concurrency, 2), seed=0)
    engine = full_length_engine(recognizer, max_turns) if full else Engine(recognizer, max_turns)
    start = time.perf_counter()
    try:
        episodes = list(engine.run(work, counted, PersonaAgent(), batch_size=concurrency, refill=refill))
    finally:
        if hasattr(focal.backend, "close"):
            focal.backend.close()
    seconds = time.perf_counter() - start
    lm_messages = sum(len(e.turns_of(Role.FOCAL)) for e in episodes)
    return {"path": path, "concurrency": concurrency, "episodes": len(episodes), "seconds": seconds,
            "episodes_per_min": 60 * len(episodes) / seconds, "lm_messages_per_min": 60 * lm_messages / seconds,
            "full_episodes_per_min": 60 * lm_messages / seconds / FULL_EPISODE_LM_MESSAGES,
            "tokens": counted.tokens, "messages_per_episode": sum(len(e.utterances) for e in episodes) / len(episodes),
            "endings": dict(collections.Counter(
                str(getattr(engine, "first_endings", {}).get(e.task.seed, e.outcome.ending)) for e in episodes))}


class _Counting:
    """Passes moves through and counts the tokens the backend generated."""

    def __init__(self, inner):
        self.inner, self.name, self.tokens = inner, inner.name, 0
        original = inner.backend.generate

        def generate(*args, **kwargs):
            generations = original(*args, **kwargs)
            self.tokens += sum(g.completion_tokens for g in generations)
            return generations
        inner.backend.generate = generate

    def start(self, *args):
        return self.inner.start(*args)

    def act(self, turns):
        return self.inner.act(turns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="baseline,default")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, help="CPU threads of torch and of llama-server (default: torch's; the server's cores - 1)")
    parser.add_argument("--max-turns", type=int, default=30)
    parser.add_argument("--refill", action="store_true", help="continuous batching: refill finished slots")
    parser.add_argument("--natural", action="store_true",
                        help="end episodes by the rules (agreement, walk-away, breakdown) instead of at the limit")
    parser.add_argument("--episodes-per-slot", type=int, default=2, help="with --refill: episodes per slot (2)")
    args = parser.parse_args(argv)
    import datetime
    import os
    import platform

    import torch

    print(f"# {datetime.date.today()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"torch {torch.__version__} · threads {args.threads or torch.get_num_threads()}")
    from emoneg_bench.perception.recognizer import default_recognizer

    recognizer = default_recognizer()
    results = []
    print("| path | concurrent | episodes | seconds | episodes/min | LM messages/min | 30-message episodes/min "
          "| tokens | messages/episode | endings |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        for path in args.paths.split(","):
            r = run(path, concurrency, args.model, args.threads, args.max_turns, recognizer, args.episodes_per_slot,
                    args.refill, full=not args.natural)
            results.append(r)
            print(f"| {r['path']} | {r['concurrency']} | {r['episodes']} | {r['seconds']:.1f} | "
                  f"{r['episodes_per_min']:.2f} | {r['lm_messages_per_min']:.1f} | {r['full_episodes_per_min']:.2f} | "
                  f"{r['tokens']} | {r['messages_per_episode']:.1f} | {r['endings']} |", flush=True)
    by = {(r["path"], r["concurrency"]): r for r in results}
    for concurrency in sorted({r["concurrency"] for r in results}):
        if ("baseline", concurrency) in by and ("default", concurrency) in by:
            ratio = by["default", concurrency]["full_episodes_per_min"] / by["baseline", concurrency]["full_episodes_per_min"]
            print(f"concurrency {concurrency}: default / baseline = {ratio:.2f}x (30-message episodes/min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
