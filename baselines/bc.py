"""``bc-top``: behaviour cloning of the emotions shown in the top episodes (the "%BC" comparator of offline
RL, Chen et al. 2021): keep the ``top_fraction`` of a release's train episodes with the highest own utility,
and fit the IQL actor's network to their (state, emotion) pairs by cross-entropy.

    L = −E_(s, a) ∈ top episodes [ log π(a | s) ]

Same state (with CORL's normalisation), same network sizes, same seeded batches as the IQL trainer, so the
only difference from IQL's actor is what the actor is fit to. The extraction temperature is chosen on
validation like IQL's; the cut itself is one of the settings ``emoneg tune`` chooses on validation.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from emoneg_bench import formulas
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.errors import InputError
from emoneg_bench.features import STATE_DIM, STATE_FEATURES
from emoneg_bench.hashing import sha256_file
from emoneg_bench.outputs import write_json

from .iql import (
    INDEX_BLOCK,
    IQLConfig,
    Transitions,
    init_mlp,
    load_transitions,
    mlp,
    record_extraction,
    state_statistics,
)
from .selector import KINDS, BCSelector

MODEL, METADATA, FORMAT, _ = KINDS["bc"]


@dataclass(frozen=True)
class BCConfig:
    top_fraction: float = 0.1  # share of train episodes kept, by own utility
    lr: float = 3e-4
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    steps: int = 10_000
    seed: int = 0
    normalize_states: bool = True

    def __post_init__(self):
        if not 0 < self.top_fraction <= 1:
            raise InputError(f"top_fraction must be in (0, 1], got {self.top_fraction}", field="top_fraction")
        if self.steps < 1 or self.batch_size < 1:
            raise InputError("steps and batch_size must be positive", field="config")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def episode_utilities(release: str | Path, split: str, role: str) -> dict[str, float]:
    """Own utility of ``role`` per episode id of ``split`` (from the ``episodes`` config)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emoneg_bench.release import verify_release

    paths = verify_release(release, ("episodes",), split).files("episodes", split)
    table = pa.concat_tables(pq.read_table(p, columns=["episode_id", "agreed_value", "focal_anchor",
                                                          "counterparty_anchor"]) for p in paths).to_pydict()
    focal = role == "focal"
    return {episode: 0.0 if x is None else min(1.0, max(0.0, formulas.own_position(x, a, b, focal)))
            for episode, x, a, b in zip(table["episode_id"], table["agreed_value"], table["focal_anchor"],
                                        table["counterparty_anchor"])}


def top_episodes(utilities: dict[str, float], fraction: float) -> set[str]:
    """The ``ceil(fraction · n)`` episodes with the highest utility (ties: the smaller episode id)."""
    ranked = sorted(utilities, key=lambda episode: (-utilities[episode], episode))
    return set(ranked[: max(1, math.ceil(fraction * len(ranked)))])


def train_bc(release: str | Path, out_dir: str | Path, domain: str = "all", config: BCConfig = BCConfig(),
             role: str = "focal", progress: bool = True, temperature: float | None = None,
             threads: int | None = None) -> Path:
    """Fit ``bc-top`` on ``release``'s train split into ``out_dir`` (``bc.safetensors`` + ``bc.json``), then
    choose its extraction temperature on validation (or record ``temperature``). A finished run is kept."""
    out = Path(out_dir)
    data = load_transitions(release, "train", domain, role)
    if not (out / METADATA).is_file():
        fit_bc(data, episode_utilities(release, "train", role), out, config, progress, threads)
    record_extraction(out, METADATA, lambda folder, t, fallback=None: BCSelector.load(folder, t, fallback), release, domain, role,
                      temperature)
    return out


def fit_bc(data: Transitions, utilities: dict[str, float], out_dir: str | Path, config: BCConfig = BCConfig(),
           progress: bool = True, threads: int | None = None) -> Path:
    """Cross-entropy steps on the top episodes' decisions; writes ``bc.safetensors`` and ``bc.json``."""
    import torch
    from safetensors.torch import save_file
    from tqdm import tqdm

    if threads is not None:
        torch.set_num_threads(threads)
    keep = np.isin(data.episode_ids, sorted(top_episodes({e: utilities[e] for e in set(data.episode_ids.tolist())},
                                                         config.top_fraction)))
    states, actions = data.states[keep], data.actions[keep]
    # the IQL trainer's normalisation and batch order, computed over the kept rows
    kept = replace(data, states=states, actions=actions)
    as_iql = IQLConfig(batch_size=config.batch_size, seed=config.seed, normalize_states=config.normalize_states,
                       hidden=config.hidden)
    mean, std = state_statistics(kept, as_iql)
    generator = torch.Generator().manual_seed(config.seed)
    policy = init_mlp((STATE_DIM, *config.hidden, len(GOEMOTIONS)), generator)
    parameters = [t.requires_grad_(True) for layer in policy for t in layer]
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    x = torch.from_numpy((states - mean) / std)
    y = torch.from_numpy(actions)
    losses = []
    with tqdm(total=config.steps, desc="bc-top", unit="step", disable=not progress) as bar:
        for step in range(config.steps):
            if step % INDEX_BLOCK == 0:
                rng = np.random.default_rng((config.seed, step // INDEX_BLOCK))
                indices = torch.from_numpy(rng.integers(0, len(y), size=(INDEX_BLOCK, config.batch_size)))
            rows = indices[step % INDEX_BLOCK]
            loss = torch.nn.functional.cross_entropy(mlp(policy, x.index_select(0, rows)), y.index_select(0, rows))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if (step + 1) % 100 == 0 or step + 1 == config.steps:
                losses.append(round(float(loss.detach()), 6))
                bar.update(step + 1 - bar.n)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"policy.{kind}.{i}": tensor.detach().contiguous()
               for i, layer in enumerate(policy) for kind, tensor in zip(("weight", "bias"), layer)}
    tensors["state_mean"], tensors["state_std"] = torch.from_numpy(mean), torch.from_numpy(std)
    save_file(tensors, out / f".{MODEL}.tmp")
    os.replace(out / f".{MODEL}.tmp", out / MODEL)
    metadata = {"format": FORMAT, "config": config.to_dict(), "data": data.release, "transitions": int(keep.sum()),
                "episodes": len(set(data.episode_ids[keep].tolist())), "state_features": list(STATE_FEATURES),
                "actions": list(GOEMOTIONS), "losses": losses, "model_sha256": sha256_file(out / MODEL)}
    write_json(out / METADATA, metadata)
    return out
