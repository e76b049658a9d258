"""Stragglers applied to a simulated decode step (the model: :mod:`workloads.decode`).

``straggled_fabric`` applies chip delays on top of the simulated schedules: from the per-chip tails
``L_c`` of every :class:`workloads.decode_result.FabricSite`, the collective of a group
completes at ``max_{c in G} (d_c + L_c)``, then the straggler policy (wait or substitute)
decides what the token is charged. ``with_link_delays`` adds link delays to the edge
latencies of the graph before it is simulated. The delay draws and the policies are those of
:mod:`workloads.stragglers`.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np

from netsim.core.errors import ConfigError
from workloads import stragglers as strag
from workloads.decode_result import FabricSite

__all__ = ["MAX_DRAWS", "straggled_fabric", "with_link_delays"]

#: Most numbers the straggler model may draw for one run (tokens x collective calls per
#: token x chips of an instance; 8 bytes each): more is refused before any is drawn.
MAX_DRAWS = 20_000_000


def with_link_delays(g: nx.Graph, spec: strag.StragglerSpec, seed: int) -> nx.Graph:
    if not any(comp.target == "link" for comp in spec.components):
        return g
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    extra = strag.draw_delays(spec, len(edges), 1, np.random.default_rng(seed), target="link")[0]
    h = g.copy()
    for (a, b), d in zip(edges, extra, strict=True):
        if d > 0:
            h.edges[a, b]["latency"] = float(h.edges[a, b]["latency"]) + float(d)
    return h


def straggled_fabric(
    sites: Sequence[FabricSite],
    chips: list[int],
    inst: Sequence[int],
    spec: strag.StragglerSpec,
    policy: strag.Policy,
    tokens: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fabric seconds per token ``[tokens]`` and substitution flags (flattened)."""
    nominal = sum(s.time_s * s.count for s in sites)
    calls = sum(s.count for s in sites)
    chip_spec = any(c.target == "chip" for c in spec.components)
    draws = tokens * (max(1, calls * len(inst)) if chip_spec else 1)
    if draws > MAX_DRAWS:
        raise ConfigError(
            f"tokens: {tokens} tokens need {draws} straggler draws, more than the limit of "
            f"{MAX_DRAWS} (workloads.decode_stragglers.MAX_DRAWS); use fewer tokens, got {tokens}"
        )
    if not chip_spec or calls == 0:
        return np.full(tokens, nominal), np.zeros(0, dtype=bool)
    inst_chips = [chips[r] for r in inst]
    col = {c: i for i, c in enumerate(inst_chips)}
    delays = strag.draw_delays(spec, len(inst_chips), tokens * calls, np.random.default_rng(seed))
    delays = delays.reshape(tokens, calls, len(inst_chips))
    fabric = np.zeros(tokens)
    masks = []
    k = 0
    for s in sites:
        members = [c for c in s.chips if c in s.run.tails]
        if not members or s.count == 0:
            k += s.count
            continue
        idx = [col[c] for c in members]
        tails = np.array([s.run.tails[c] for c in members])
        arrivals = delays[:, k : k + s.count, :][:, :, idx] + tails
        done, mask = strag.apply_policy(arrivals, policy, start=s.time_s)
        fabric += np.asarray(done).sum(axis=1)
        masks.append(mask.ravel())
        k += s.count
    return fabric, (np.concatenate(masks) if masks else np.zeros(0, dtype=bool))
