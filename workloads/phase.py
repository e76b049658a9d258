"""The phase engine behind :func:`workloads.decode.decode` and :func:`workloads.decode.prefill`.

:func:`run_phase` resolves the options against the model, chip and topology, plans memory and
takes the roofline compute time (:mod:`workloads.roofline`); if the configuration fits, it
times the collectives of every pipeline stage on the fabric (:func:`collective_sites`: TP
all-reduces, MoE dispatch and combine, pipeline sends; each distinct collective simulated
once for every group of the system), applies stragglers (:mod:`workloads.decode_stragglers`)
and prices the token (:mod:`workloads.token_cost`) into a
:class:`workloads.decode_result.DecodeResult`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from collectives.calibration import LibraryCosts, cost_model, library_costs, link_types
from netsim.core.errors import ConfigError
from workloads import stragglers as strag
from workloads.chips import Chip
from workloads.decode_result import DecodeResult, FabricSite
from workloads.decode_stragglers import straggled_fabric, with_link_delays
from workloads.fabric import (
    CollectiveRun,
    Fabric,
    elements,
    library_notes,
    library_record,
    run_allreduce,
    run_groups,
)
from workloads.landing import landing_zone
from workloads.models import TransformerModel
from workloads.moe_bytes import moe_wire_record, with_wire_dtypes
from workloads.moe_collectives import MoeTraffic, moe_runs
from workloads.moe_kernels import KernelModel, kernel_costs_record, moe_kernel_model
from workloads.options import DecodeOptions
from workloads.rank_layout import layout, resolve_topology, topology_chips
from workloads.roofline import (
    CollectiveNeed,
    ComputeEstimate,
    Split,
    decode_collectives,
    step_compute,
)
from workloads.sharding import Parallelism
from workloads.token_cost import token_cost

__all__ = ["Setup", "collective_sites", "run_phase"]


@dataclass(frozen=True)
class Setup:
    """The options of one decode step or prefill resolved against model, chip and topology.

    Attributes
    ----------
    phase : str
        ``"decode"`` or ``"prefill"``.
    m : TransformerModel
        The model with the wire formats of dispatch and combine applied.
    seq : int
        ``context`` (decode) or ``prompt`` (prefill) tokens per sequence.
    opts : DecodeOptions
        The options as given.
    moe : bool
        Whether the step has MoE layers with expert parallelism (``ep > 1``).
    combine, moe_mode : str
        The MoE combine algorithm and routing mode, defaults resolved.
    spec, policy : StragglerSpec, Policy
        The parsed straggler options.
    kernels : KernelModel
        The MoE kernel cost model (:mod:`workloads.moe_kernels`).
    zone, landing_latency : str, float
        Landing zone of arriving bytes and its per-message latency.
    graph, chips, par : networkx.Graph, list of int, Parallelism
        The topology, its chips in rank order and the rank layout.
    costs : LibraryCosts
        The collective library's costs on the topology's link types.
    """

    phase: str
    m: TransformerModel
    seq: int
    opts: DecodeOptions
    moe: bool
    combine: str
    moe_mode: str
    spec: strag.StragglerSpec
    policy: strag.Policy
    kernels: KernelModel
    zone: str
    landing_latency: float
    graph: nx.Graph
    chips: list[int]
    par: Parallelism
    costs: LibraryCosts

    @property
    def step_tokens(self) -> int:
        """Tokens one step produces per model instance (prefill: every prompt token)."""
        return self.opts.batch if self.phase == "decode" else self.opts.batch * self.seq


def run_phase(
    phase: str, m: TransformerModel, c: Chip, topo: str | nx.Graph, seq: int, opts: DecodeOptions
) -> DecodeResult:
    """Time one decode step (``phase="decode"``, ``seq`` = context) or one prefill
    (``"prefill"``, ``seq`` = prompt) of ``m`` on chip ``c`` and topology ``topo``.

    Returns
    -------
    DecodeResult
        ``fits=False`` with the capacity report and NaN times if it does not fit in memory.

    Raises
    ------
    ConfigError
        An option that does not apply to the model, chip or topology.
    """
    s = _setup(phase, m, c, topo, seq, opts)
    params = _record(s, c, topo)
    est = _compute(s, c)
    report = est.capacity
    capacity = {**report.to_dict(), "summary": report.summary()}
    if not report.fits:
        return DecodeResult(phase, params, False, capacity, notes=(report.summary(),))
    fabric, inst = _fabric(s)
    sites, notes = collective_sites(s, fabric)
    params.update(kernel_costs_record(sites))
    return _result(s, c, est, sites, inst, params, capacity, notes)


def _setup(
    phase: str, m: TransformerModel, c: Chip, topo: str | nx.Graph, seq: int, opts: DecodeOptions
) -> Setup:
    """Resolve ``opts`` against the model, chip and topology (:class:`Setup`)."""
    combine, moe_mode = opts.moe_algorithms()
    wired = with_wire_dtypes(m, opts.dispatch_dtype, opts.combine_dtype)
    active = m.is_moe and opts.ep > 1
    kernels = moe_kernel_model(opts.moe_kernels, opts.dispatch, c, active=active)
    zone, landing_latency = landing_zone(opts.landing, c)
    if not active and opts.moe_given():
        key, value = next(iter(opts.moe_given().items()))
        raise ConfigError(
            f"{key}: applies to MoE layers with expert parallelism (ep > 1); "
            f"{m.name} with ep={opts.ep} has none, got {value!r}"
        )
    g = resolve_topology(topo)
    chips = topology_chips(g)
    par = layout(len(chips), tp=opts.tp, pp=opts.pp, ep=opts.ep, dp=opts.dp)
    step, launch = opts.step_overhead, opts.collective_launch
    costs = library_costs(opts.library, link_types(g), step=step, launch=launch)
    spec, policy = (
        strag.parse_stragglers(opts.stragglers),
        strag.parse_policy(opts.straggler_policy),
    )
    return Setup(
        phase,
        wired,
        seq,
        opts,
        active,
        combine,
        moe_mode,
        spec,
        policy,
        kernels,
        zone,
        landing_latency,
        g,
        chips,
        par,
        costs,
    )


def _record(s: Setup, c: Chip, topo: str | nx.Graph) -> dict[str, Any]:
    """The inputs of the step as recorded in the result (what ran)."""
    o, m, moe = s.opts, s.m, s.moe
    policy = o.straggler_policy
    return {
        "llm": m.name,
        "chip": c.name,
        "topo": topo if isinstance(topo, str) else str(s.graph.graph.get("name", "graph")),
        "tp": o.tp,
        "pp": o.pp,
        "ep": o.ep,
        "dp": s.par.dp,
        "batch": o.batch,
        ("context" if s.phase == "decode" else "prompt"): s.seq,
        "allreduce_requested": o.allreduce,
        "dispatch": o.dispatch if moe else None,
        "combine": s.combine if moe else None,
        "moe_routing": o.moe_routing if moe else None,
        "moe_mode": s.moe_mode if moe else None,
        **moe_wire_record(m, moe),
        **s.kernels.record(),
        "backend": o.backend,
        "forwarding": o.forwarding,
        "routing": o.routing,
        **library_record(o.library, s.costs),
        "landing": s.zone,
        "landing_latency_s": s.landing_latency,
        "stragglers": s.spec.text,
        "straggler_policy": policy if isinstance(policy, str) else s.policy.kind,
        "tokens": o.tokens,
        "seed": o.seed,
    }


def _compute(s: Setup, c: Chip) -> ComputeEstimate:
    """The roofline compute time of the step, without requiring it to fit."""
    o = s.opts
    split = Split(tp=o.tp, pp=o.pp, ep=o.ep, require_fit=False, usable_fraction=o.usable_fraction)
    return step_compute(s.m, c, s.phase, o.batch, s.seq, **split)


def _fabric(s: Setup) -> tuple[Fabric, list[int]]:
    """The fabric the collectives run on (link delays of the straggler spec applied) and the
    ranks of model instance 0, whose traffic is counted and whose time is charged."""
    o, par, chips = s.opts, s.par, s.chips
    g = with_link_delays(s.graph, s.spec, o.seed)
    inst = par.instance_groups()[0]
    fabric = Fabric(
        g,
        chips,
        o.backend,
        o.forwarding,
        o.routing,
        o.seed,
        s.costs.step,
        s.landing_latency,
        frozenset(chips[r] for r in inst),
    )
    model = cost_model(
        o.library, link_types(s.graph), step=o.step_overhead, launch=o.collective_launch
    )
    return fabric.with_costs(s.costs, model), inst


def _result(
    s: Setup,
    c: Chip,
    est: ComputeEstimate,
    sites: list[FabricSite],
    inst: list[int],
    params: dict[str, Any],
    capacity: dict[str, Any],
    notes: list[str],
) -> DecodeResult:
    """Charge the fabric time (with stragglers) to the token and price it."""
    o, par = s.opts, s.par
    fabric_tok, subst = straggled_fabric(sites, s.chips, inst, s.spec, s.policy, o.tokens, o.seed)
    latencies = est.time + fabric_tok
    percentiles = strag.straggler_report(latencies, subst[None, :] if subst.size else None)
    if not subst.size:
        percentiles["substituted_fraction"] = 0.0
    latency = float(np.mean(latencies))
    per_step = s.step_tokens
    notes.extend(library_notes(o.library, s.costs))
    if s.spec.components:
        nominal = sum(site.time_s * site.count for site in sites)
        notes.append(
            "stragglers: chip delays applied to simulated per-chip tails (see docs/decode.md); "
            f"nominal fabric {nominal:.6g} s per token"
        )
    return DecodeResult(
        phase=s.phase,
        params=params,
        fits=True,
        capacity=capacity,
        token_latency_s=latency,
        compute_s=est.compute_bound_time,
        memory_s=est.memory_bound_time,
        launch_s=est.launch_time,
        fabric_s=float(np.mean(fabric_tok)),
        tokens_per_s=1.0 / latency if s.phase == "decode" else s.seq / latency,
        tokens_per_s_per_chip=per_step / latency / par.instance_size,
        sites=tuple(sites),
        allreduce=next((x.run.algo for x in sites if x.name == "tp_allreduce"), None),
        model=next((x.run.model for x in sites), f"{o.backend} (no collectives)"),
        latency_percentiles=percentiles,
        token_latencies_s=tuple(float(x) for x in np.atleast_1d(latencies)),
        cost=token_cost(s.m, c, est, sites, par, latency, per_step, o.chip_price),
        notes=tuple(notes),
    )


def collective_sites(s: Setup, fabric: Fabric) -> tuple[list[FabricSite], list[str]]:
    """The collectives a token waits for, stage by stage, each timed on ``fabric``.

    Each distinct collective (a TP all-reduce of one size, the MoE dispatch and combine, a
    pipeline send of one size) is run once, for every group of the system at once, and
    shared by the sites that call it. Returns the sites and notes on what was simplified.
    """
    par, m = s.par, s.m
    runs: dict[str, CollectiveRun] = {}
    sites: list[FabricSite] = []
    for st in range(par.pp):
        needs = decode_collectives(
            m, batch=s.step_tokens, tp=par.tp, pp=par.pp, ep=par.ep, stage=st
        )
        sites += [_site(s, fabric, need, st, runs) for need in needs]
    notes = []
    if s.moe:
        notes.append(
            "moe: one layer's routing is simulated and reused for every MoE layer; with tp > 1 "
            "each of the tp parallel EP groups carries the full tokens"
        )
    return sites, notes


def _stage_chips(s: Setup, stage: int, tp_only: bool) -> tuple[int, ...]:
    """Chips of model instance 0 in pipeline ``stage`` (its first TP group if ``tp_only``)."""
    par = s.par
    es = range(1) if tp_only else range(par.ep)
    return tuple(s.chips[par.rank(tp_i=t, dp_i=e, pp_i=stage)] for e in es for t in range(par.tp))


def _site(
    s: Setup, fabric: Fabric, need: CollectiveNeed, stage: int, runs: dict[str, CollectiveRun]
) -> FabricSite:
    """The site of ``need`` in ``stage``, its collective timed (or taken from ``runs`` if
    that collective ran already). An all-reduce's chips are one TP group, the others' the
    whole stage of model instance 0."""
    par, chips, act = s.par, s.chips, s.m.act_dtype_bytes
    if need.kind == "all_reduce":
        name, key = "tp_allreduce", f"ar:{need.nbytes}"
        if key not in runs:
            count, size = elements(need.nbytes, act)
            groups = [[chips[r] for r in grp] for grp in par.tp_groups()]
            runs[key] = run_allreduce(fabric, groups, count, size, s.opts.allreduce)
    elif need.kind == "all_to_all":
        name, key = need.name, ("dispatch" if need.name == "moe_dispatch" else "combine")
        if key not in runs:
            o = s.opts
            traffic = MoeTraffic(o.dispatch, s.combine, o.moe_routing, s.moe_mode, o.seed)
            runs["dispatch"], runs["combine"] = moe_runs(
                s.m, par, fabric, chips, s.step_tokens // par.ep, traffic, s.kernels
            )
    else:  # pipeline send
        name, key = "pp_send", f"pp:{need.nbytes}"
        if key not in runs:
            count, size = elements(need.nbytes, act)
            pipes = par.pp_groups()
            pairs = [[chips[a], chips[b]] for p in pipes for a, b in itertools.pairwise(p)]
            runs[key] = run_groups(fabric, "pp_send", "sendrecv", "direct", pairs, count, size)
    members = _stage_chips(s, stage, tp_only=need.kind == "all_reduce")
    return FabricSite(name, need.kind, stage, need.nbytes, need.count, members, runs[key])
