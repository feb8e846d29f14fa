"""Engine throughput: the teacher (random emotions) against the training personas, recognizer in the
loop, 30-message cap. Prints episodes/s and messages/s per batch size and peak RSS per run.

Each configuration runs in its own process so its peak RSS is its own; episodes are consumed as they
stream out (nothing is kept), which is how builders use the engine.

    python benchmarks/engine_throughput.py                 # batch 1, 64, 512 + the memory-flatness check
    python benchmarks/engine_throughput.py --batch 512 --episodes 20480
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(batch: int, episodes: int, seed: int) -> dict:
    from emoneg_bench.agents.personas import PersonaAgent, persona_names
    from emoneg_bench.agents.teacher import TeacherAgent
    from emoneg_bench.domains import domain_ids, generate_scenarios
    from emoneg_bench.engine import Engine
    from emoneg_bench.negotiation import Task
    from emoneg_bench.perception.recognizer import default_recognizer

    engine = Engine(default_recognizer(), max_turns=30)
    personas = persona_names(held_out=False)
    scenarios = [s for d in domain_ids() for s in generate_scenarios(d, 80, seed)]

    def tasks(persona):
        for k in range(episodes // len(personas)):
            yield Task(scenarios[k % len(scenarios)], persona, seed + k)

    teacher = TeacherAgent("random")
    n_episodes = n_messages = 0
    start = time.perf_counter()
    for persona in personas:
        for episode in engine.run(tasks(persona), teacher, PersonaAgent(persona), batch_size=batch):
            n_episodes += 1
            n_messages += len(episode.utterances)
    elapsed = time.perf_counter() - start
    return {"batch": batch, "episodes": n_episodes, "messages": n_messages, "seconds": round(elapsed, 2),
            "episodes_per_s": round(n_episodes / elapsed, 1), "messages_per_s": round(n_messages / elapsed),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def child(batch: int, episodes: int, seed: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--batch", str(batch), "--episodes", str(episodes),
                          "--seed", str(seed), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--episodes", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by the parent run)")
    args = parser.parse_args()
    if args.batch:
        result = run_one(args.batch, args.episodes or 4096, args.seed)
        print(json.dumps(result) if args.json else result)
        return
    child(8, 64, args.seed)  # train and cache the recognizer outside the timed runs
    plan = [(1, 400), (64, 4096), (512, 8192), (512, 32768)]
    print(f"{'batch':>6} {'episodes':>9} {'seconds':>8} {'episodes/s':>11} {'messages/s':>11} {'peak RSS MB':>12}")
    for batch, episodes in plan:
        r = child(batch, episodes, args.seed)
        print(f"{r['batch']:>6} {r['episodes']:>9} {r['seconds']:>8} {r['episodes_per_s']:>11} "
              f"{r['messages_per_s']:>11} {r['peak_rss_mb']:>12}", flush=True)


if __name__ == "__main__":
    main()
