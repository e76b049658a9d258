"""Node-limited MoE routing: each token's experts lie on at most ``M`` nodes.

DeepSeek-V3 limits every token to experts on at most ``M = 4`` nodes (DeepSeek-AI,
"DeepSeek-V3 Technical Report", arXiv:2412.19437, 2024, §2.1.2: the nodes are picked by the
sum of the highest affinity scores of the experts on each node), so the normal dispatch
sends a token over RDMA at most ``M`` times. DeepEP's normal-kernel benchmark routes the same
way: random scores, the top ``min(nodes, 4)`` nodes by their best expert, then the top-k
experts among those nodes (its ``tests/test_internode.py``).

Model (routing spec ``SPEC@M``, :func:`workloads.moe.parse_routing`): experts are split
into ``nodes`` contiguous groups (one per node, as contiguous placement puts them); a token
first draws ``M`` distinct nodes with inclusion probabilities proportional to the nodes'
summed expert weights, then ``top_k`` distinct experts among those nodes' experts with
probabilities proportional to their weights (both by randomised systematic sampling,
:func:`workloads.moe.systematic_sample`). With uniform weights this is exactly DeepEP's
test routing (iid scores make the chosen nodes a uniform ``M``-subset and the experts a
uniform ``top_k``-subset of theirs) and leaves every expert's mean load unchanged; with
skewed weights the per-expert means differ from the unlimited ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.validate import require_int
from workloads import moe

__all__ = ["route_node_limited"]


def route_node_limited(
    spec: str | moe.RoutingSpec,
    tokens: int | Sequence[int],
    experts: int,
    top_k: int,
    rng: np.random.Generator,
    *,
    ranks: int,
    nodes: int,
) -> list[np.ndarray]:
    """:func:`workloads.moe.route_tokens` with the spec's node limit over ``nodes`` groups.

    Without a limit, or with ``nodes <= limit``, this is :func:`workloads.moe.route_tokens`.

    Raises
    ------
    ConfigError
        If ``nodes`` does not divide ``experts`` or ``limit`` nodes hold fewer than
        ``top_k`` experts.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = route_node_limited("uniform@2", 50, 16, 4, rng, ranks=1, nodes=8)
    >>> max(len(set(row // 2)) for row in a[0])
    2
    """
    spec = moe.parse_routing(spec)
    nodes = require_int("nodes", nodes, min=1)
    limit = spec.node_limit
    if not limit or limit >= nodes:
        return moe.route_tokens(spec, tokens, experts, top_k, rng, ranks=ranks)
    if experts % nodes:
        raise ConfigError(f"moe-routing: nodes ({nodes}) must divide the experts, got {experts}")
    per = experts // nodes
    if limit * per < top_k:
        raise ConfigError(
            f"moe-routing: {limit} nodes hold {limit * per} experts, fewer than top_k={top_k}"
        )
    w = moe.expert_weights(spec, experts)
    pi_nodes = moe.inclusion_probabilities(w.reshape(nodes, per).sum(axis=1), limit)
    counts = [tokens] * ranks if isinstance(tokens, int) else list(tokens)
    if len(counts) != ranks:
        raise ConfigError(f"tokens: need one count per rank ({ranks}), got {len(counts)}")
    counts = [require_int("tokens", x, min=0) for x in counts]
    out = []
    for n in counts:
        chosen = np.sort(moe.systematic_sample(pi_nodes, limit, n, rng), axis=1)
        routes = np.empty((n, top_k), dtype=np.int64)
        sets, which = np.unique(chosen, axis=0, return_inverse=True)
        for u, row in enumerate(sets):
            idx = np.flatnonzero(which.ravel() == u)
            cand = (row[:, None] * per + np.arange(per)).ravel()
            pi = moe.inclusion_probabilities(w[cand], top_k)
            routes[idx] = cand[moe.systematic_sample(pi, top_k, len(idx), rng)]
        out.append(routes)
    return out
