"""The statistics behind every leaderboard number, as pure numpy functions.

Percentile bootstrap CIs over episodes, Wilson intervals for rates, Bradley–Terry ratings (with a
bootstrap over games) and the rank-with-ties rule. Nothing here reads files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

EXACT_MAX_N = 2000  # groups up to this size are resampled index by index
DRAWS_PER_CHUNK = 1 << 23  # resampled indices held in memory at once on the exact path
BINS = 64  # quantile bins for larger groups


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` bootstrap replicates of the mean of ``values`` (resampling with replacement).

    Groups of at most ``EXACT_MAX_N`` values: indices are drawn uniformly, in chunks, so the
    replicates are the textbook bootstrap. Larger groups would need n·B draws (10¹⁰ for a million
    episodes), so the sorted values are cut into ``BINS`` equal-count quantile bins with count
    ``n_k``, mean ``m_k`` and standard deviation ``s_k``; a replicate draws the bin counts
    ``c ~ Multinomial(n, n_k/n)`` exactly and the within-bin sums by the central limit theorem:
    ``mean* = Σ_k (c_k·m_k + √c_k·s_k·Z_k) / n`` with ``Z_k ~ N(0, 1)``. Each bin holds ≥ n/BINS > 31
    values, so the replicates match the exact bootstrap's mean and variance; when every bin is
    constant (discrete values, e.g. 0/1 outcomes) they are exact.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n <= EXACT_MAX_N:
        means = np.empty(n_resamples)
        chunk = max(1, DRAWS_PER_CHUNK // n)
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
        return means
    bins = np.array_split(np.sort(values), BINS)
    sizes = np.array([len(b) for b in bins], dtype=np.float64)
    bin_means = np.array([b.mean() for b in bins])
    bin_stds = np.array([b.std() for b in bins])
    counts = rng.multinomial(n, sizes / n, size=n_resamples).astype(np.float64)
    noise = rng.standard_normal(counts.shape) * np.sqrt(counts) * bin_stds
    return (counts @ bin_means + noise.sum(axis=1)) / n


def percentile_bootstrap_ci(values_or_group_arrays, n_resamples: int = 10000, seed: int = 0,
                            level: float = 0.95):
    """Percentile bootstrap CI of the mean: ``[q_{α/2}, q_{1−α/2}]`` of the replicate means, α = 1 − level.

    One array → ``(low, high)``; a sequence of arrays (groups) → an array of shape ``(groups, 2)``.
    One seeded ``numpy.random.Generator`` serves every group in order, so the same inputs and seed
    give the same bounds. An empty group gives ``(nan, nan)``. See ``bootstrap_means`` for how each
    group is resampled.
    """
    rng = np.random.default_rng(seed)
    single = _is_single(values_or_group_arrays)
    groups = [values_or_group_arrays] if single else list(values_or_group_arrays)
    bounds = np.full((len(groups), 2), np.nan)
    quantiles = [(1 - level) / 2, 1 - (1 - level) / 2]
    for g, values in enumerate(groups):
        if len(values):
            bounds[g] = np.quantile(bootstrap_means(values, n_resamples, rng), quantiles)
    return (float(bounds[0, 0]), float(bounds[0, 1])) if single else bounds


def _is_single(values) -> bool:
    if isinstance(values, np.ndarray):
        return values.dtype != object and values.ndim == 1
    return len(values) == 0 or np.isscalar(values[0])


def wilson_interval(successes, n, level: float = 0.95):
    """Wilson score interval for a rate ``p = successes/n``:
    ``(p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)``, z the normal quantile at ``(1 + level)/2``.

    Works on scalars or arrays; ``n = 0`` gives ``(nan, nan)``.
    """
    successes, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = successes / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = centre - half, centre + half
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def bradley_terry(wins_matrix, reference: int = 0, prior: float = 0.0, max_iter: int = 10000,
                  tol: float = 1e-10) -> np.ndarray:
    """Bradley–Terry ratings ``r_i = log p_i − log p_reference`` with ``P(i beats j) = p_i / (p_i + p_j)``.

    ``wins_matrix[i, j]`` = games i won against j, ties already counted as half a win to each side.
    ``prior`` adds that many virtual tied games to every pair that played, which keeps ratings finite
    when a policy won or lost every game. Fitted by Hunter's (2004) MM algorithm:
    ``p_i ← W_i / Σ_{j≠i} n_ij / (p_i + p_j)``, ``W_i = Σ_j w_ij``, ``n_ij = w_ij + w_ji``.
    Accepts a batch ``(..., m, m)`` and fits every matrix at once. Ratings of a policy that never won
    are −inf (without a prior); policies in unconnected groups are only comparable within a group.
    """
    wins = np.asarray(wins_matrix, dtype=np.float64)
    games = wins + np.swapaxes(wins, -1, -2)
    if prior:
        wins = wins + np.where(games > 0, prior / 2, 0.0)
        games = wins + np.swapaxes(wins, -1, -2)
    total_wins = wins.sum(axis=-1)
    strength = np.ones(wins.shape[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            pair_sum = strength[..., :, None] + strength[..., None, :]
            denominator = np.where(games > 0, games / pair_sum, 0.0).sum(axis=-1)
            updated = np.where(denominator > 0, total_wins / denominator, strength)
            updated = updated / updated.sum(axis=-1, keepdims=True) * updated.shape[-1]
            change = np.nanmax(np.abs(np.log(updated + 1e-300) - np.log(strength + 1e-300)))
            strength = updated
            if change < tol:
                break
        log_strength = np.log(strength)
    return log_strength - log_strength[..., reference:reference + 1]


def win_matrix(first, second, score, players: int, weights=None) -> np.ndarray:
    """``W[i, j]`` = Σ over games of ``score`` (1 win, ½ tie, 0 loss) for ``first = i`` vs ``second = j``,
    plus ``1 − score`` to ``W[j, i]``; ``weights`` counts each game that many times."""
    first, second, score = np.asarray(first), np.asarray(second), np.asarray(score, dtype=np.float64)
    weights = np.ones(len(score)) if weights is None else np.asarray(weights, dtype=np.float64)
    flat = np.bincount(first * players + second, weights=weights * score, minlength=players * players)
    flat += np.bincount(second * players + first, weights=weights * (1 - score), minlength=players * players)
    return flat.reshape(players, players)


def bootstrap_bradley_terry(first, second, score, players: int, reference: int = 0, prior: float = 0.0,
                            n_resamples: int = 10000, seed: int = 0, level: float = 0.95, counts=None,
                            batch: int = 1000) -> np.ndarray:
    """Percentile bootstrap CIs of Bradley–Terry ratings, resampling whole games with replacement.

    Games may come aggregated: row k is ``counts[k]`` identical games (same players, same score).
    Resampling G games with replacement is then exactly ``Multinomial(G, counts/G)`` over the rows,
    so a replicate draws those counts, rebuilds the win matrix with them as weights and refits
    (``batch`` replicates at a time). Returns ``(players, 2)`` bounds.
    """
    rng = np.random.default_rng(seed)
    counts = np.ones(len(score)) if counts is None else np.asarray(counts, dtype=np.float64)
    n_games = int(counts.sum())
    ratings = np.empty((n_resamples, players))
    for start in range(0, n_resamples, batch):
        stop = min(start + batch, n_resamples)
        draws = rng.multinomial(n_games, counts / n_games, size=stop - start)
        matrices = np.stack([win_matrix(first, second, score, players, weights=c) for c in draws])
        ratings[start:stop] = bradley_terry(matrices, reference=reference, prior=prior)
    return np.quantile(ratings, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0).T


def ranks_with_ties(estimates: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[int]:
    """Competition ranks (1, 1, 3, …) where overlapping CIs share a rank.

    Policies are sorted by estimate, best first. The best opens tier 1 and is its leader; each next
    policy joins the current tier (same rank as the leader) when its CI overlaps the leader's
    (``high ≥ leader's low``), otherwise it leads a new tier ranked by its position in the order.
    Comparing with the tier leader, not the neighbour, stops ties from chaining down the table.
    NaN estimates come last, each with its own position.
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    order = sorted(range(len(estimates)), key=lambda i: (math.isnan(estimates[i]), -np.nan_to_num(estimates[i])))
    ranks = [0] * len(estimates)
    leader = None
    for position, i in enumerate(order, start=1):
        if leader is not None and not math.isnan(estimates[i]) and highs[i] >= lows[leader]:
            ranks[i] = ranks[leader]
        else:
            leader, ranks[i] = i, position
    return ranks
