"""Mixture-of-experts dispatch and combine traffic during decode.

A decode step of an MoE layer with expert parallelism (EP) over ``ranks`` chips moves each
token's hidden state to the chips that hold its ``top_k`` experts (**dispatch**) and moves
the expert outputs back (**combine**). This module computes *who sends how many bytes to
whom*; the collectives package runs the resulting per-pair byte matrix as an all-to-all.

Conventions
-----------
* Source ranks and EP ranks are the same ``ranks`` chips: EP rank ``s`` holds ``tokens``
  tokens of the decode batch (attention data-parallel over the EP group, the "wide EP"
  layout of DeepSeek-V3 inference) and ``experts / ranks`` experts.
* ``tokens`` is the number of tokens **per source rank** (an int, or one int per rank).
* Matrices are indexed ``[src_rank, dst_rank]`` in bytes. The **diagonal is local**: a token
  whose expert lives on its own rank is processed in place and is *not* sent over the
  fabric. Collective runners must skip it; :func:`imbalance` ignores it by default.
* ``combine_matrix(d) == d.T``: each expert output returns to the rank that sent the token.

Routing distributions (``--moe-routing``)
----------------------------------------
``uniform``
    every expert equally popular.
``zipf:S`` or ``zipf:S:SEED``
    expert of popularity rank ``i`` (1-based) has weight ``i**-S``; which expert is the
    hottest is a permutation drawn from ``SEED`` (default 0), independent of the sampling rng.
``load:W1,W2,...`` (or ``loads:...``)
    an explicit per-expert load vector (one weight per expert, normalised to sum 1).
``SPEC@M``
    node-limited routing: each token's experts lie on at most ``M`` nodes (DeepSeek-V3,
    arXiv:2412.19437, §2.1.2, ``M = 4``); :mod:`workloads.moe_nodes`.

Routing model. Each token picks ``top_k`` *distinct* experts. Expert ``e`` is chosen with
marginal probability ``pi_e = min(1, c * w_e)`` where ``w`` are the normalised weights and
``c`` makes ``sum(pi) == top_k`` (proportional inclusion probabilities, capped at 1 because an
expert can be chosen at most once per token). Sampling uses randomised systematic sampling
(Goodman & Kish 1950; Hartley & Rao 1962): a random order of the experts, then the ``top_k``
points ``u, u+1, ..., u+top_k-1`` on the cumulative sum of ``pi``. It realises these
marginals exactly, so the ``expected`` mode (``tokens * pi``) is the exact mean of the
``sample`` mode. For ``uniform`` it draws a uniformly random ``top_k``-subset.

Hierarchical dispatch and deduplication
---------------------------------------
With scale-up domains of ``domain_size`` consecutive ranks (e.g. an NVLink node), dispatch
can run in two stages as in DeepSeek-V3 (DeepSeek-AI, "DeepSeek-V3 Technical Report",
arXiv:2412.19437, 2024, §3.2.2): stage 1 sends a token across domains to the rank with the
*same local index* in each destination domain (over the scale-out fabric, IB); stage 2
forwards it inside the destination domain to the ranks that hold its experts (NVLink).
DeepSeek-V3 sends each token over IB once per target node, "each token can efficiently select
an average of 3.2 experts per node without incurring additional overhead from NVLink", and
limits each token to at most 4 nodes (node-limited routing, §2.1.2). The ``dedup`` variants
here send a token once per destination rank (flat) or once per destination domain and once
per destination rank (hierarchical) instead of once per expert.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.validate import require_choice, require_float, require_int
from workloads.spec_fields import spec_number

__all__ = [
    "MODES",
    "PLACEMENTS",
    "ROUTING_KINDS",
    "RoutingSpec",
    "combine_matrix",
    "contributor_sets",
    "counts_from_assignments",
    "dedup_dispatch_matrix",
    "dedup_hierarchical_stages",
    "dispatch_matrix",
    "expert_weights",
    "hierarchical_stages",
    "imbalance",
    "inclusion_probabilities",
    "parse_routing",
    "place_experts",
    "route_tokens",
    "routing_counts",
    "systematic_sample",
]

ROUTING_KINDS = ("uniform", "zipf", "load")
PLACEMENTS = ("contiguous", "round-robin")
MODES = ("sample", "expected")
_CHUNK = 1 << 20  # elements of a (tokens x experts) block sampled at once


@dataclass(frozen=True)
class RoutingSpec:
    """A parsed routing distribution.

    Attributes
    ----------
    kind : str
        ``"uniform"``, ``"zipf"`` or ``"load"``.
    exponent : float
        Zipf exponent ``S`` (``kind == "zipf"``).
    seed : int
        Seed of the permutation that decides which experts are hot (``kind == "zipf"``).
    load : tuple of float
        Normalised per-expert load (``kind == "load"``); sums to 1.
    node_limit : int
        Most nodes a token's experts may lie on (``SPEC@M``; 0: no limit). Applied by
        :func:`workloads.moe_nodes.route_node_limited`.
    """

    kind: str
    exponent: float = 0.0
    seed: int = 0
    load: tuple[float, ...] = ()
    node_limit: int = 0

    def __str__(self) -> str:
        limit = f"@{self.node_limit}" if self.node_limit else ""
        if self.kind == "zipf":
            return f"zipf:{self.exponent:g}:{self.seed}{limit}"
        if self.kind == "load":
            return "load:" + ",".join(f"{x:g}" for x in self.load) + limit
        return self.kind + limit


def parse_routing(text: str | RoutingSpec) -> RoutingSpec:
    """Parse ``uniform``, ``zipf:S[:SEED]`` or ``load:W1,W2,...`` into a :class:`RoutingSpec`.

    Raises
    ------
    ConfigError
        If the text does not follow the grammar, ``S < 0``, or a load weight is negative,
        not finite, or all weights are zero.

    Examples
    --------
    >>> parse_routing("zipf:1.2").exponent
    1.2
    >>> parse_routing("load:1,3").load
    (0.25, 0.75)
    """
    if isinstance(text, RoutingSpec):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"moe-routing: expected a string such as uniform, got {text!r}")
    base, at, limit = text.partition("@")
    if at:
        if not limit.strip().isdigit() or int(limit) < 1:
            raise ConfigError(
                f"moe-routing: node limit after '@' must be an integer >= 1, got {text!r}"
            )
        return dataclasses.replace(parse_routing(base), node_limit=int(limit))
    s = text.strip()
    kind, _, rest = s.partition(":")
    kind = kind.strip().lower()
    if kind == "uniform" and not rest:
        return RoutingSpec("uniform")
    if kind == "zipf" and rest:
        parts = rest.split(":")
        if len(parts) > 2:
            raise ConfigError(f"moe-routing: expected zipf:S or zipf:S:SEED, got {text!r}")
        exponent = spec_number(
            parts[0], f"moe-routing: zipf exponent must be a number >= 0, got {text!r}"
        )
        seed = 0
        if len(parts) == 2:
            error = f"moe-routing: zipf seed must be an integer >= 0, got {text!r}"
            seed = int(spec_number(parts[1], error, integer=True))
        return RoutingSpec("zipf", exponent=exponent, seed=seed)
    if kind in ("load", "loads") and rest:
        try:
            w = np.array([float(x) for x in rest.split(",")], dtype=float)
        except ValueError:
            raise ConfigError(
                f"moe-routing: load must be comma-separated numbers, got {text!r}"
            ) from None
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.size or w.max() <= 0:
            raise ConfigError(
                f"moe-routing: load weights must be finite, >= 0 and not all 0, got {text!r}"
            )
        w = w / w.max()  # first, so that the sum of huge weights (1e308) cannot overflow
        return RoutingSpec("load", load=tuple(float(x) for x in w / w.sum()))
    raise ConfigError(
        f"moe-routing: expected uniform, zipf:S[:SEED] or load:W1,W2,..., got {text!r}"
    )


def expert_weights(spec: str | RoutingSpec, experts: int) -> np.ndarray:
    """Return the normalised popularity of each of ``experts`` experts (sums to 1).

    Raises
    ------
    ConfigError
        If ``experts < 1`` or a ``load`` vector does not have ``experts`` entries.
    """
    spec = parse_routing(spec)
    experts = require_int("experts", experts, min=1)
    if spec.kind == "uniform":
        return np.full(experts, 1.0 / experts)
    if spec.kind == "zipf":
        ranked = np.arange(1, experts + 1, dtype=float) ** -spec.exponent
        perm = np.random.default_rng(spec.seed).permutation(experts)
        w = np.empty(experts)
        w[perm] = ranked  # expert perm[i] has popularity rank i + 1
        return w / w.sum()
    if len(spec.load) != experts:
        raise ConfigError(
            f"moe-routing: load vector must have one weight per expert ({experts}), "
            f"got {len(spec.load)}"
        )
    return np.asarray(spec.load, dtype=float)


def inclusion_probabilities(weights: np.ndarray, top_k: int) -> np.ndarray:
    """Return ``pi_e = min(1, c * w_e)`` with ``sum(pi) == top_k`` (see module docstring).

    Raises
    ------
    ConfigError
        If ``top_k`` exceeds the number of experts with a non-zero weight.
    """
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    k = require_int("top_k", top_k, min=1, max=len(w))
    if np.count_nonzero(w) < k:
        raise ConfigError(
            f"top_k: must be <= the number of experts with non-zero load "
            f"({np.count_nonzero(w)}), got {k}"
        )
    pi = np.zeros_like(w)
    capped = np.zeros(len(w), dtype=bool)
    for _ in range(len(w)):  # water-filling: at most one new capped expert per round
        free = ~capped
        budget = k - capped.sum()
        pi[capped] = 1.0
        pi[free] = budget * w[free] / w[free].sum()
        over = free & (pi > 1.0)
        if not over.any():
            break
        capped |= over
    return np.minimum(pi, 1.0)


def _token_counts(tokens: int | Sequence[int], ranks: int) -> np.ndarray:
    if isinstance(tokens, int | np.integer) and not isinstance(tokens, bool):
        t = np.full(ranks, require_int("tokens", tokens, min=0), dtype=np.int64)
    else:
        t = np.array([require_int("tokens", x, min=0) for x in tokens], dtype=np.int64)
        if len(t) != ranks:
            raise ConfigError(f"tokens: need one count per rank ({ranks}), got {len(t)}")
    return t


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def systematic_sample(pi: np.ndarray, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` k-subsets with inclusion probabilities ``pi``: int array [n, k]."""
    e = len(pi)
    out = np.empty((n, k), dtype=np.int64)
    step = max(1, _CHUNK // e)
    for lo in range(0, n, step):
        m = min(step, n - lo)
        order = np.argsort(rng.random((m, e)), axis=1)  # a random order per token
        cum = np.cumsum(pi[order], axis=1)
        cum[:, -1] = k  # remove rounding drift so exactly k points fall inside
        u = np.clip(rng.random((m, 1)), 1e-9, 1.0 - 1e-9)  # keep points off the edges
        hi = np.floor(cum - u)
        lo_ = np.concatenate([np.full((m, 1), -1.0), hi[:, :-1]], axis=1)
        chosen = hi > lo_  # a point u + j lies in this expert's interval
        pos = np.nonzero(chosen)
        out[lo : lo + m] = order[pos].reshape(m, k)
    return out


def route_tokens(
    spec: str | RoutingSpec,
    tokens: int | Sequence[int],
    experts: int,
    top_k: int,
    rng: np.random.Generator | int | None = None,
    *,
    ranks: int = 1,
) -> list[np.ndarray]:
    """Route every token of every source rank to ``top_k`` distinct experts.

    Parameters
    ----------
    spec : str or RoutingSpec
        Routing distribution (see module docstring).
    tokens : int or sequence of int
        Tokens per source rank.
    experts, top_k : int
        Number of experts and experts per token.
    rng : Generator, int or None
        Random generator or seed.
    ranks : int, keyword-only
        Number of source ranks.

    Returns
    -------
    list of ndarray
        One int array ``[tokens_s, top_k]`` of expert ids per source rank ``s``.
    """
    w = expert_weights(spec, experts)
    pi = inclusion_probabilities(w, top_k)
    ranks = require_int("ranks", ranks, min=1)
    t = _token_counts(tokens, ranks)
    g = _rng(rng)
    return [systematic_sample(pi, int(top_k), int(n), g) for n in t]


def counts_from_assignments(assignments: Sequence[np.ndarray], experts: int) -> np.ndarray:
    """Return the integer matrix ``[source_rank, expert]`` of token-expert assignments."""
    return np.stack([np.bincount(a.ravel(), minlength=experts) for a in assignments])


def routing_counts(
    spec: str | RoutingSpec,
    tokens: int | Sequence[int],
    experts: int,
    top_k: int,
    rng: np.random.Generator | int | None = None,
    *,
    ranks: int = 1,
    mode: str = "sample",
) -> np.ndarray:
    """Return the matrix ``[source_rank, expert]`` of token-expert assignments.

    ``mode="sample"`` draws routes (integers; each row sums to ``tokens_s * top_k``);
    ``mode="expected"`` returns the exact mean ``tokens_s * pi_e`` (floats, no randomness).

    Raises
    ------
    ConfigError
        On a bad spec, ``top_k`` outside ``[1, experts]`` or an unknown ``mode``.

    Examples
    --------
    >>> float(routing_counts("uniform", 4, experts=8, top_k=2, ranks=2, mode="expected")[0, 0])
    1.0
    """
    require_choice("mode", mode, MODES)
    if mode == "expected":
        ranks = require_int("ranks", ranks, min=1)
        t = _token_counts(tokens, ranks)
        pi = inclusion_probabilities(expert_weights(spec, experts), top_k)
        return t[:, None].astype(float) * pi[None, :]
    return counts_from_assignments(
        route_tokens(spec, tokens, experts, top_k, rng, ranks=ranks), experts
    )


def place_experts(experts: int, ranks: int, scheme: str = "contiguous") -> np.ndarray:
    """Return the EP rank of each expert.

    ``contiguous``: experts ``[r*E/ep, (r+1)*E/ep)`` on rank ``r``; ``round-robin``: expert
    ``e`` on rank ``e % ep``.

    Raises
    ------
    ConfigError
        If ``experts`` is not a multiple of ``ranks`` or the scheme is unknown.
    """
    experts = require_int("experts", experts, min=1)
    ranks = require_int("ranks", ranks, min=1)
    require_choice("placement", scheme, PLACEMENTS)
    if experts % ranks:
        raise ConfigError(f"experts: must be a multiple of the EP ranks ({ranks}), got {experts}")
    e = np.arange(experts)
    return e // (experts // ranks) if scheme == "contiguous" else e % ranks


def _check_placement(placement: np.ndarray, experts: int, ranks: int | None) -> int:
    p = np.asarray(placement)
    if p.ndim != 1 or len(p) != experts:
        raise ConfigError(f"placement: need one rank per expert ({experts}), got shape {p.shape}")
    n = int(p.max()) + 1 if ranks is None else ranks
    if p.min() < 0 or p.max() >= n:
        raise ConfigError(f"placement: ranks must lie in [0, {n - 1}], got {p.min()}..{p.max()}")
    return n


def dispatch_matrix(
    counts: np.ndarray, placement: np.ndarray, bytes_per_token: float, *, ranks: int | None = None
) -> np.ndarray:
    """Return the dispatch bytes ``[src_rank, dst_rank]`` (one copy per token-expert pair).

    The diagonal holds bytes for experts on the sender's own rank: local, not sent.

    Raises
    ------
    ConfigError
        If the placement does not match the counts or the matrix is not square.
    """
    c = np.asarray(counts, dtype=float)
    n = _check_placement(placement, c.shape[1], ranks)
    if c.shape[0] != n:
        raise ConfigError(
            f"counts: need one row per EP rank ({n}) since sources are EP ranks, got {c.shape[0]}"
        )
    bpt = require_float("bytes_per_token", bytes_per_token, min=0)
    onehot = np.zeros((c.shape[1], n))
    onehot[np.arange(c.shape[1]), np.asarray(placement)] = 1.0
    return c @ onehot * bpt


def combine_matrix(dispatch: np.ndarray) -> np.ndarray:
    """Return the combine bytes: the transpose of the dispatch matrix."""
    return np.asarray(dispatch).T.copy()


def dedup_dispatch_matrix(
    assignments: Sequence[np.ndarray],
    placement: np.ndarray,
    bytes_per_token: float,
    *,
    ranks: int | None = None,
) -> np.ndarray:
    """Dispatch bytes when a token is sent once per destination *rank*.

    A token routed to several experts on the same rank crosses the fabric once.
    """
    p = np.asarray(placement)
    n = _check_placement(p, len(p), ranks)
    if len(assignments) != n:
        raise ConfigError(f"assignments: need one array per EP rank ({n}), got {len(assignments)}")
    bpt = require_float("bytes_per_token", bytes_per_token, min=0)
    out = np.zeros((n, n))
    for s, a in enumerate(assignments):
        dst = p[a]  # [tokens, k] destination ranks
        hit = np.zeros((len(dst), n), dtype=bool)
        hit[np.arange(len(dst))[:, None], dst] = True
        out[s] = hit.sum(axis=0) * bpt
    return out


def contributor_sets(
    assignments: Sequence[np.ndarray], placement: np.ndarray, *, ranks: int | None = None
) -> list[dict[tuple[int, ...], int]]:
    """Group every source rank's tokens by the set of *other* ranks holding their experts.

    For source rank ``s``, a token whose ``top_k`` experts live on ranks ``R`` needs the
    remote ranks ``R - {s}``: dispatch sends it there (once each, or once as a multicast) and
    in the combine those ranks return one partial sum each (experts of one rank are summed
    locally first), which an in-network reduction adds up on the way back. Tokens whose
    experts are all local need no fabric and are not listed.

    Returns
    -------
    list of dict
        Per source rank: sorted tuple of remote ranks -> number of tokens.

    Examples
    --------
    >>> place = place_experts(4, 4)
    >>> contributor_sets([np.array([[0, 1]]), np.array([[2, 3]])] + [np.zeros((0, 2), int)] * 2,
    ...                  place)[:2]
    [{(1,): 1}, {(2, 3): 1}]
    """
    p = np.asarray(placement)
    n = _check_placement(p, len(p), ranks)
    if len(assignments) != n:
        raise ConfigError(f"assignments: need one array per EP rank ({n}), got {len(assignments)}")
    out: list[dict[tuple[int, ...], int]] = []
    for s, a in enumerate(assignments):
        sets: dict[tuple[int, ...], int] = {}
        for row in p[np.asarray(a, dtype=int)]:
            key = tuple(sorted({int(r) for r in row} - {s}))
            if key:
                sets[key] = sets.get(key, 0) + 1
        out.append(dict(sorted(sets.items())))
    return out


def _domains(n: int, domain_size: int) -> int:
    domain_size = require_int("domain_size", domain_size, min=1)
    if n % domain_size:
        raise ConfigError(f"domain_size: must divide the EP ranks ({n}), got {domain_size}")
    return domain_size


def hierarchical_stages(matrix: np.ndarray, domain_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a dispatch matrix into inter-domain and intra-domain stages.

    Ranks ``[d*domain_size, (d+1)*domain_size)`` form domain ``d``. Stage 1 moves bytes from
    ``s`` to the rank with the same local index as ``s`` in the destination domain; stage 2
    moves them from there (or from ``s`` itself, for same-domain traffic) to the destination.

    Returns
    -------
    stage1, stage2 : ndarray
        Byte matrices ``[src, dst]``. ``stage1`` has only cross-domain entries and
        ``stage1.sum()`` equals the cross-domain bytes of ``matrix``; ``stage2`` has only
        intra-domain entries, its diagonal is local, and its column sums equal those of
        ``matrix`` (every byte reaches its destination).
    """
    m = np.asarray(matrix, dtype=float)
    n = m.shape[0]
    if m.shape != (n, n):
        raise ConfigError(f"matrix: must be square, got shape {m.shape}")
    size = _domains(n, domain_size)
    r = np.arange(n)
    dom, loc = r // size, r % size
    peer = dom[None, :] * size + loc[:, None]  # peer[s, d]: same local index as s, domain of d
    cross = dom[:, None] != dom[None, :]
    stage1 = np.zeros((n, n))
    stage2 = np.zeros((n, n))
    src = np.broadcast_to(r[:, None], (n, n))
    hop = np.where(cross, peer, src)  # where the bytes start stage 2
    np.add.at(stage1, (src[cross], peer[cross]), m[cross])
    np.add.at(stage2, (hop.ravel(), np.broadcast_to(r[None, :], (n, n)).ravel()), m.ravel())
    return stage1, stage2


def dedup_hierarchical_stages(
    assignments: Sequence[np.ndarray],
    placement: np.ndarray,
    bytes_per_token: float,
    domain_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-stage dispatch with deduplication, as in DeepSeek-V3 (§3.2.2).

    Stage 1 sends each token once per destination domain other than its own (to the rank with
    the same local index); stage 2 sends it once per destination rank inside the domain.
    """
    p = np.asarray(placement)
    n = _check_placement(p, len(p), None)
    size = _domains(n, domain_size)
    if len(assignments) != n:
        raise ConfigError(f"assignments: need one array per EP rank ({n}), got {len(assignments)}")
    bpt = require_float("bytes_per_token", bytes_per_token, min=0)
    ndom = n // size
    stage1 = np.zeros((n, n))
    stage2 = np.zeros((n, n))
    for s, a in enumerate(assignments):
        dst = p[a]
        rows = np.arange(len(dst))[:, None]
        hit = np.zeros((len(dst), n), dtype=bool)
        hit[rows, dst] = True
        dhit = np.zeros((len(dst), ndom), dtype=bool)
        dhit[rows, dst // size] = True
        sd, sl = s // size, s % size
        for d in range(ndom):
            if d != sd:
                stage1[s, d * size + sl] += dhit[:, d].sum() * bpt
        per_rank = hit.sum(axis=0) * bpt
        for d in range(n):
            hop = s if d // size == sd else (d // size) * size + sl
            stage2[hop, d] += per_rank[d]
    return stage1, stage2


def imbalance(matrix: np.ndarray, *, include_local: bool = False) -> dict[str, object]:
    """Load-imbalance metrics of a byte matrix.

    Returns
    -------
    dict
        ``received`` and ``sent`` (bytes per rank), ``max_received``, ``mean_received``,
        ``imbalance`` (= max/mean of received bytes, 1.0 when perfectly balanced; nan when
        nothing is received) and ``total`` bytes. Local (diagonal) bytes are excluded unless
        ``include_local``.
    """
    m = np.asarray(matrix, dtype=float).copy()
    if not include_local:
        np.fill_diagonal(m, 0.0)
    recv = m.sum(axis=0)
    mean = float(recv.mean())
    return {
        "received": recv,
        "sent": m.sum(axis=1),
        "max_received": float(recv.max()),
        "mean_received": mean,
        "imbalance": float(recv.max() / mean) if mean > 0 else math.nan,
        "total": float(m.sum()),
    }
