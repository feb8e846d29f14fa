"""Implicit Q-Learning (Kostrikov, Nair & Levine, 2022) over discrete emotions: which of the 28
GoEmotions to show at each focal turn, learned offline from a release's ``transitions`` config.

The networks read the state of :mod:`emoneg_bench.features` (63 named features):

    twin critic  Q₁, Q₂ : s → 28 action values     value  V : s → 1     policy  π : s → 28 logits

and are fit with CORL's three losses, all computed from the parameters before the step:

    value   L_V = E[ |τ − 1(u < 0)| · u² ],  u = min(Q̄₁, Q̄₂)(s, a) − V(s)      (expectile regression)
    critic  L_Q = ½ Σᵢ E[ (Qᵢ(s, a) − r − γ·(1 − terminated)·V(s'))² ]        (V-bootstrapped, no max)
    policy  L_π = −E[ min(exp(β·u), exp_adv_max) · log π(a | s) ]                (advantage-weighted)

Q̄ is the Polyak-averaged target critic. Truncated transitions (turn limit) still bootstrap. Because no
loss reaches another network's parameters, one backward pass of L_Q + L_V + L_π gives each network the
gradient CORL's three sequential updates give it. The policy's learning rate follows CORL's cosine decay.

States are standardised with the training transitions' mean and standard deviation (CORL's
``normalize``), stored with the weights. The reward is the release's shaped ``reward`` or its
``utility_reward`` (the evaluation metric itself), a choice made on validation (``docs/selector.md``).

Each network is a list of (weight, bias) tensors whose names (``q1.weight.0`` …) key the safetensors
files, so the trained selector runs in numpy without torch (``baselines.selector``). Speed on a CPU comes from doing little besides
the matmuls: one fused Adam over three parameter groups, targets under ``no_grad``, a batch gathered from
one contiguous table, losses summed as tensors and read only every ``log_every`` steps, and batch indices
drawn in blocks as a pure function of (seed, step) — which also makes a resumed run identical to an
uninterrupted one without saving any random state.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.errors import InputError
from emoneg_bench.features import STATE_DIM, STATE_FEATURES
from emoneg_bench.hashing import sha256_file
from emoneg_bench.negotiation import Role
from emoneg_bench.outputs import write_json
from emoneg_bench.release import load_release_dataset, open_release

from .selector import KINDS, IQLSelector

MODEL, METADATA, FORMAT, _ = KINDS["iql"]
CURVES, CHECKPOINTS = "curves.csv", "checkpoints"
REWARDS = {"shaped": "reward", "utility": "utility_reward"}  # IQLConfig.reward → transitions column
# Margins tried on validation for the fallback to the best fixed emotion (selector.py); 0 keeps every pick the critic
# rates above the baseline, larger margins deviate only for larger claimed gains.
FALLBACK_MARGINS = (0.0, 0.01, 0.02, 0.04, 0.08)
STD_EPS = 1e-3  # CORL's floor on a state feature's standard deviation
INDEX_BLOCK = 1000  # steps whose batch indices are drawn together
# iql.safetensors holds the target critic (what V and π were fit against), V and π
EXPORTED = {"q1": "q1_target", "q2": "q2_target", "value": "value", "policy": "policy"}


@dataclass(frozen=True)
class IQLConfig:
    """Every hyper-parameter: CORL's IQL defaults except β and the expectile, chosen on validation (`emoneg tune
    iql`, with the fallback extraction: docs/selector.md)."""

    expectile: float = 0.9  # τ of the value's expectile regression (chosen on validation)
    beta: float = 30.0  # inverse temperature of the advantage weights (chosen on validation)
    discount: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critic
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    policy_lr: float = 3e-4  # decayed to 0 over ``steps`` by a cosine schedule
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    exp_adv_max: float = 100.0  # clamp of the advantage weights
    steps: int = 20_000
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 5_000
    reward: str = "shaped"  # shaped: the release's `reward`; utility: its `utility_reward`
    normalize_states: bool = True  # standardise states with the training mean and std (CORL's default)
    truncation_bootstraps: bool = True  # False: the turn limit ends the game (progress is in the state)

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1 or self.checkpoint_every < 1:
            raise InputError("steps, batch_size, log_every and checkpoint_every must be positive", field="config")
        if self.checkpoint_every % self.log_every:
            raise InputError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple of log_every "
                             f"({self.log_every}) so a resumed run logs the same curve", field="checkpoint_every")
        if not 0 < self.expectile < 1:
            raise InputError(f"expectile must be in (0, 1), got {self.expectile}", field="expectile")
        if self.reward not in REWARDS:
            raise InputError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}", field="reward")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


# ---------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Transitions:
    """One split of a release's ``transitions``, narrowed to a domain and a role, as arrays."""

    states: np.ndarray  # (n, STATE_DIM) float32
    actions: np.ndarray  # (n,) int64, indices into GOEMOTIONS
    rewards: np.ndarray  # (n,) float32, the shaped `reward`
    next_states: np.ndarray  # (n, STATE_DIM) float32
    terminated: np.ndarray  # (n,) bool; truncated transitions are not terminated and bootstrap
    personas: np.ndarray  # (n,) str
    utility_rewards: np.ndarray | None = None  # (n,) float32, the `utility_reward` (None: same as rewards)
    truncated: np.ndarray | None = None  # (n,) bool, the turn limit (None: none)
    episode_ids: np.ndarray | None = None  # (n,) str
    domains: tuple[str, ...] = ()  # the domains the rows come from
    release: dict | None = None  # release, name, version, manifest_sha256, split, domain, role

    def reward_of(self, config: IQLConfig) -> np.ndarray:
        """The reward column ``config.reward`` names."""
        if config.reward == "utility":
            if self.utility_rewards is None:
                raise InputError("these transitions have no utility_reward; train with reward 'shaped'", field="reward")
            return self.utility_rewards
        return self.rewards

    def done_of(self, config: IQLConfig) -> np.ndarray:
        """Where the TD target does not bootstrap: terminations, and the turn limit unless it bootstraps."""
        if config.truncation_bootstraps or self.truncated is None:
            return self.terminated
        return self.terminated | self.truncated


def load_transitions(release: str | Path, split: str = "train", domain: str = "all",
                     role: str = "focal") -> Transitions:
    """Read ``transitions`` the way users do (``datasets.load_dataset``) and keep ``domain`` (``all`` = every
    domain) and ``role``."""
    from .data import check_domain

    release = Path(release)
    manifest = open_release(release, ("transitions",))
    check_domain(domain)
    if role not in [str(r) for r in Role]:
        raise InputError(f"unknown role {role!r}; expected one of {', '.join(str(r) for r in Role)}", field="role")
    if not any((release / "data" / "transitions").glob(f"{split}-*.parquet")):
        raise InputError(f"release {release} has no {split!r} split in its transitions config", field="split")
    table = load_release_dataset(release, "transitions", split).with_format("numpy")
    columns = table.select_columns(["episode_id", "domain", "role", "persona", "state", "action", "reward",
                                    "utility_reward", "next_state", "terminated", "truncated"])[:]
    keep = (columns["role"] == role) & ((columns["domain"] == domain) if domain != "all" else True)
    if not keep.any():
        raise InputError(f"release {release} has no {role} transitions for domain {domain!r} in split {split!r} "
                         f"(it has {', '.join(sorted(set(columns['role'].tolist())))} transitions of "
                         f"{', '.join(sorted(set(columns['domain'].tolist())))})")
    states = np.ascontiguousarray(columns["state"][keep], dtype=np.float32)
    if states.shape[1:] != (STATE_DIM,):
        raise InputError(f"transitions have {states.shape[1]} state features, this toolkit's state has {STATE_DIM}; "
                         f"rebuild the release with this toolkit", file=str(release), field="state")
    actions = columns["action"][keep].astype(np.int64)
    if (actions < 0).any():
        row = int(np.flatnonzero(keep)[np.argmax(actions < 0)])
        raise InputError("the decision has no emotion (an emotion-free agent's turn); IQL needs one at every "
                         "decision", file=f"{release} transitions {split}", row=row, field="action")
    return Transitions(
        states=states, actions=actions,
        rewards=columns["reward"][keep].astype(np.float32),
        next_states=np.ascontiguousarray(columns["next_state"][keep], dtype=np.float32),
        terminated=columns["terminated"][keep].astype(bool),
        personas=columns["persona"][keep],
        utility_rewards=columns["utility_reward"][keep].astype(np.float32),
        truncated=columns["truncated"][keep].astype(bool),
        episode_ids=columns["episode_id"][keep],
        domains=tuple(sorted(set(columns["domain"][keep].tolist()))),
        release={"release": manifest.get("release", release.name), "name": manifest.get("name"),
                 "version": manifest.get("version"), "manifest_sha256": sha256_file(release / "MANIFEST.json"),
                 "split": split, "domain": domain, "role": role},
    )


# -------------------------------------------------------------------------------- networks and losses
# A network is its list of (weight (in, out), bias) layers; the same names key the safetensors files.

TRAINED = ("q1", "q2", "value", "policy")
TARGETS = ("q1_target", "q2_target")


def init_mlp(sizes: tuple[int, ...], generator) -> list:
    """torch.nn.Linear's initialisation: weights and biases ~ U(±1/√fan_in)."""
    import torch

    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        layers.append((torch.empty(fan_in, fan_out).uniform_(-bound, bound, generator=generator),
                       torch.empty(fan_out).uniform_(-bound, bound, generator=generator)))
    return layers


def init_networks(config: IQLConfig, device=None) -> dict[str, list]:
    """Every network, drawn on the CPU from ``config.seed`` (the same weights on every device), then moved."""
    import torch

    generator = torch.Generator().manual_seed(config.seed)
    hidden, actions = config.hidden, len(GOEMOTIONS)
    nets = {name: [(w.to(device), b.to(device)) for w, b in
                   init_mlp((STATE_DIM, *hidden, 1 if name == "value" else actions), generator)]
            for name in TRAINED}
    for name in TARGETS:
        nets[name] = [(w.clone(), b.clone()) for w, b in nets[name.removesuffix("_target")]]
    for name in TRAINED:
        for layer in nets[name]:
            for tensor in layer:
                tensor.requires_grad_(True)
    return nets


def parameters(nets: dict[str, list], names=TRAINED + TARGETS) -> dict:
    """``{net}.weight.{i}`` / ``{net}.bias.{i}`` → tensor."""
    return {f"{name}.{kind}.{i}": tensor for name in names for i, layer in enumerate(nets[name])
            for kind, tensor in zip(("weight", "bias"), layer)}


def mlp(layers: list, x):
    """ReLU between layers, none after the last."""
    for i, (weight, bias) in enumerate(layers):
        x = bias.addmm(x, weight)
        if i < len(layers) - 1:
            x = x.relu_()
    return x


def expectile_loss(diff, expectile: float):
    """Asymmetric L2 of IQL's value step: E[|τ − 1(u < 0)| · u²]."""
    weight = (diff < 0).to(diff.dtype).sub_(expectile).abs_()
    return (weight * diff.square()).mean()


def iql_losses(nets: dict[str, list], states, actions, rewards, next_states, not_terminated, config: IQLConfig):
    """(critic, value, policy) losses and the batch's advantages, from the current parameters."""
    import torch

    picked = actions.view(-1, 1)
    with torch.no_grad():
        target_q = torch.min(mlp(nets["q1_target"], states), mlp(nets["q2_target"], states)).gather(1, picked).view(-1)
        td_target = rewards + config.discount * not_terminated * mlp(nets["value"], next_states).view(-1)
    q1, q2, v, logits = (mlp(nets[name], states) for name in TRAINED)
    advantage = target_q - v.view(-1)
    value_loss = expectile_loss(advantage, config.expectile)
    critic_loss = ((q1.gather(1, picked).view(-1) - td_target).square().mean()
                   + (q2.gather(1, picked).view(-1) - td_target).square().mean()) / 2
    weights = torch.exp(config.beta * advantage.detach()).clamp_(max=config.exp_adv_max)
    log_prob = torch.log_softmax(logits, dim=-1).gather(1, picked).view(-1)
    policy_loss = -(weights * log_prob).mean()
    return critic_loss, value_loss, policy_loss, advantage.detach()


def policy_lr(config: IQLConfig, step: int) -> float:
    """CORL's ``CosineAnnealingLR(policy_optimizer, steps)`` in closed form."""
    return config.policy_lr * 0.5 * (1 + math.cos(math.pi * step / config.steps))


def batch_indices(config: IQLConfig, rows: int, block: int):
    """The batch rows of steps ``block·INDEX_BLOCK …`` (uniform with replacement, like CORL's buffer)."""
    import torch

    rng = np.random.default_rng((config.seed, block))
    return torch.from_numpy(rng.integers(0, rows, size=(INDEX_BLOCK, config.batch_size)))


# ------------------------------------------------------------------------------------------ training

def train_iql(release: str | Path, out_dir: str | Path, domain: str = "all", config: IQLConfig = IQLConfig(),
              progress: bool = True, resume: bool = True, role: str = "focal", device: str = "auto",
              threads: int | None = None, temperature: float | None = None) -> Path:
    """Train on ``release``'s train transitions into ``out_dir`` (see :func:`fit_iql`), then choose the
    extraction temperature on the release's validation tasks (or record ``temperature`` as given).
    Returns ``out_dir``."""
    out = fit_iql(load_transitions(release, "train", domain, role), out_dir, config, progress, resume, device,
                  threads)
    record_extraction(out, METADATA, lambda folder, t, fallback=None: IQLSelector.load(folder, t, fallback),
                      release, domain, role, temperature, margins=FALLBACK_MARGINS)
    return out


def record_extraction(run: Path, metadata_file: str, load, release: str | Path, domain: str, role: str,
                      temperature: float | None, margins: tuple[float, ...] = ()) -> None:
    """Write the run's extraction: ``temperature`` when given (no fallback), else the temperature and fallback
    margin (among ``margins``) chosen on validation. A run that already records one keeps it (resuming a
    finished run changes nothing)."""
    from .validation import ValidationSet, choose_temperature

    metadata = json.loads((run / metadata_file).read_text())
    if temperature is None and "extraction" in metadata:
        return
    if temperature is not None:
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise InputError(f"temperature must be a number >= 0, got {temperature}", field="temperature")
        metadata["extraction"] = {"temperature": float(temperature), "fallback": None, "chosen_on": "given"}
        write_json(run / metadata_file, metadata)
        return
    choose_temperature(run, load, metadata_file, ValidationSet.of(release, domain, role), margins=margins)


def fit_iql(data: Transitions, out_dir: str | Path, config: IQLConfig = IQLConfig(), progress: bool = True,
            resume: bool = True, device: str = "auto", threads: int | None = None) -> Path:
    """Run ``config.steps`` IQL steps; write ``curves.csv``, ``checkpoints/step-N`` every
    ``checkpoint_every`` steps, and the final ``iql.safetensors`` + ``iql.json``. With ``resume`` an
    interrupted run in ``out_dir`` continues from its last checkpoint (to the same weights) and a finished
    one is returned as is; without it, ``out_dir``'s previous run is replaced.

    ``device`` is ``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``; the networks are
    initialised on the CPU either way, so a seed gives the same starting weights everywhere (the trained
    weights of a CPU and a GPU run agree only to rounding). ``threads`` sets torch's CPU threads."""
    import torch
    from tqdm import tqdm

    from emoneg_bench.backends.local import resolve_device

    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}", field="threads")
        torch.set_num_threads(threads)
    on = resolve_device(device)
    out = Path(out_dir)
    run = {"format": FORMAT, "config": config.to_dict(), "data": data.release, "transitions": len(data.actions)}
    if resume and (out / METADATA).is_file():
        _check_same_run(out / METADATA, run)
        return out
    if not resume:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
        for name in (METADATA, MODEL, CURVES):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    nets = init_networks(config, on)
    trained = {name: [t for layer in nets[name] for t in layer] for name in TRAINED}
    optimizer = torch.optim.Adam([
        {"params": trained["q1"] + trained["q2"], "lr": config.critic_lr},
        {"params": trained["value"], "lr": config.value_lr},
        {"params": trained["policy"], "lr": config.policy_lr},
    ], fused=True)
    start = _restore(out, run, nets, optimizer) if resume else 0
    window, since_log = torch.zeros(4, device=on), 0  # loss sums since the last log line, read only when logging
    with _Curves(out / CURVES, start) as curves, \
            tqdm(total=config.steps, initial=start, desc="IQL", unit="step", disable=not progress) as bar:
        for step, batch in batches(data, config, start, on):
            window += update(nets, optimizer, batch, config, step)
            since_log, done = since_log + 1, step + 1
            if done % config.log_every == 0 or done == config.steps:
                means = (window / since_log).tolist()
                window.zero_()
                since_log = 0
                curves.write(done, means)
                bar.set_postfix(q=f"{means[0]:.3g}", v=f"{means[1]:.3g}", pi=f"{means[2]:.3g}", refresh=False)
                bar.update(done - bar.n)
            if done % config.checkpoint_every == 0 and done < config.steps:
                curves.flush()
                save_checkpoint(out, run, done, nets, optimizer)
    _export(out, run, nets, config.steps, means, on, state_statistics(data, config))
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return out


def batches(data: Transitions, config: IQLConfig, start: int, device=None):
    """(step, (states, actions, rewards, next states, 1 − terminated)) for the steps from ``start`` on."""
    import torch

    D = STATE_DIM
    mean, std = state_statistics(data, config)
    table = torch.from_numpy(np.concatenate([
        (data.states - mean) / std, (data.next_states - mean) / std, data.reward_of(config)[:, None],
        (~data.done_of(config))[:, None].astype(np.float32),
    ], axis=1, dtype=np.float32)).to(device)  # one contiguous row per transition: a batch is one gather
    actions = torch.from_numpy(data.actions).to(device)
    for step in range(start, config.steps):
        if step % INDEX_BLOCK == 0 or step == start:
            indices = batch_indices(config, len(actions), step // INDEX_BLOCK).to(device)
        rows = indices[step % INDEX_BLOCK]
        batch = table.index_select(0, rows)
        yield step, (batch[:, :D], actions.index_select(0, rows), batch[:, 2 * D], batch[:, D:2 * D],
                     batch[:, 2 * D + 1])


def state_statistics(data: Transitions, config: IQLConfig) -> tuple[np.ndarray, np.ndarray]:
    """CORL's state normalisation: the training states' mean and standard deviation (floored at
    ``STD_EPS``); zeros and ones when ``normalize_states`` is off."""
    if not config.normalize_states:
        return np.zeros(STATE_DIM, np.float32), np.ones(STATE_DIM, np.float32)
    states = data.states.astype(np.float64)
    return states.mean(axis=0).astype(np.float32), (states.std(axis=0) + STD_EPS).astype(np.float32)


def update(nets: dict[str, list], optimizer, batch: tuple, config: IQLConfig, step: int):
    """One gradient step of every network and the target critic's Polyak step. Returns the losses and the
    mean advantage as one tensor, which the caller reads only when it logs."""
    import torch

    critic_loss, value_loss, policy_loss, advantage = iql_losses(nets, *batch, config)
    optimizer.param_groups[2]["lr"] = policy_lr(config, step)
    optimizer.zero_grad(set_to_none=True)
    (critic_loss + value_loss + policy_loss).backward()
    optimizer.step()
    with torch.no_grad():
        for name in TARGETS:
            for target, online in zip(nets[name], nets[name.removesuffix("_target")]):
                for target_tensor, online_tensor in zip(target, online):
                    target_tensor.lerp_(online_tensor, config.tau)
        return torch.stack([critic_loss, value_loss, policy_loss, advantage.mean()])


def _check_same_run(path: Path, run: dict) -> None:
    recorded = json.loads(path.read_text())
    if {k: recorded.get(k) for k in run} != run:
        raise InputError("holds an IQL run of a different config or release; choose another output folder or "
                         "train without resuming to replace it", file=str(path.parent))


class _Curves:
    """``curves.csv``, cut back to the resumed step (rows logged after the last checkpoint are redone)."""

    COLUMNS = ("step", "critic_loss", "value_loss", "policy_loss", "mean_advantage")

    def __init__(self, path: Path, start: int):
        kept = []
        if start and path.is_file():
            with open(path, newline="") as handle:
                kept = [row for row in list(csv.reader(handle))[1:] if int(row[0]) <= start]
        self.handle = open(path, "w", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerows([self.COLUMNS, *kept])

    def write(self, step: int, means: list[float]) -> None:
        self.writer.writerow([step, *(f"{m:.6g}" for m in means)])

    def flush(self) -> None:
        self.handle.flush()

    def __enter__(self) -> _Curves:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


# -------------------------------------------------------------------------------- checkpoints, export

def save_checkpoint(out: Path, run: dict, step: int, nets: dict, optimizer) -> Path:
    """``checkpoints/step-N/{state.safetensors,state.json}``: every network, and Adam's moments and step
    counts as tensors; written aside and renamed, then older checkpoints are removed."""
    from safetensors.torch import save_file

    named = parameters(nets)
    tensors = {name: tensor.detach().cpu() for name, tensor in named.items()}
    by_id = {id(tensor): name for name, tensor in named.items()}
    for parameter, state in optimizer.state.items():
        for key, value in state.items():
            tensors[f"adam.{by_id[id(parameter)]}.{key}"] = value.reshape(-1).cpu()
    folder = out / CHECKPOINTS / f"step-{step:08d}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, tmp / "state.safetensors")
    (tmp / "state.json").write_text(json.dumps({**run, "step": step}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder)
    for older in (out / CHECKPOINTS).glob("step-*"):
        if older.name < folder.name:
            shutil.rmtree(older)
    return folder


def _restore(out: Path, run: dict, nets: dict, optimizer) -> int:
    """Load the newest checkpoint in ``out`` into the networks and optimizer; its step (0 if none)."""
    import torch
    from safetensors.torch import load_file

    folders = sorted((out / CHECKPOINTS).glob("step-*")) if (out / CHECKPOINTS).is_dir() else []
    if not folders:
        return 0
    _check_same_run(folders[-1] / "state.json", run)
    tensors = load_file(folders[-1] / "state.safetensors")
    with torch.no_grad():
        for name, tensor in parameters(nets).items():
            tensor.copy_(tensors[name])
    for name, tensor in parameters(nets, TRAINED).items():
        optimizer.state[tensor] = {
            "step": tensors[f"adam.{name}.step"].reshape(()).to(tensor.device),
            "exp_avg": tensors[f"adam.{name}.exp_avg"].reshape(tensor.shape).to(tensor.device),
            "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].reshape(tensor.shape).to(tensor.device),
        }
    return json.loads((folders[-1] / "state.json").read_text())["step"]


def _export(out: Path, run: dict, nets: dict, steps: int, losses: list[float], device,
            statistics: tuple[np.ndarray, np.ndarray]) -> None:
    """The trained selector: ``iql.safetensors`` (``{q1,q2,value,policy}.{weight,bias}.{layer}``, weights
    (in, out); q1 and q2 are the target critic; ``state_mean``/``state_std``) and ``iql.json``."""
    import torch
    from safetensors.torch import save_file

    tensors = {exported + key.removeprefix(name): tensor.detach().cpu().contiguous()
               for exported, name in EXPORTED.items() for key, tensor in parameters(nets, (name,)).items()}
    tensors["state_mean"], tensors["state_std"] = (torch.from_numpy(x) for x in statistics)
    save_file(tensors, out / f".{MODEL}.tmp")
    os.replace(out / f".{MODEL}.tmp", out / MODEL)
    metadata = {**run, "steps": steps, "state_features": list(STATE_FEATURES), "actions": list(GOEMOTIONS),
                "final_losses": dict(zip(_Curves.COLUMNS[1:], losses)), "model_sha256": sha256_file(out / MODEL),
                "device": str(device or "cpu")}
    write_json(out / METADATA, metadata)




def preferred_emotions(selector: IQLSelector, release: str | Path, split: str = "validation",
                       domain: str = "all") -> dict[str, dict[str, float]]:
    """Per persona, the expected share of ``split``'s decisions (of the role the selector was trained for) in
    which the selector shows each emotion at its extraction (temperature and fallback), most shown first."""
    data = load_transitions(release, split, domain, selector.metadata["data"]["role"])
    probabilities = selector.extraction_probabilities(data.states)
    shares = {}
    for persona in sorted(set(data.personas.tolist())):
        mean = probabilities[data.personas == persona].mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        shares[persona] = {GOEMOTIONS[i]: round(float(mean[i]), 4) for i in order if mean[i] >= 5e-5}
    return shares
