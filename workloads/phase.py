"""The phase engine behind :func:`workloads.decode.decode` and :func:`workloads.decode.prefill`.

``_phase`` validates the options, plans memory and takes the roofline compute time
(:mod:`workloads.roofline`); if the configuration fits, it times the collectives of every
pipeline stage on the fabric (``_sites``: TP all-reduces, MoE dispatch and combine, pipeline
sends; each distinct collective simulated once for every group of the system), applies
stragglers (:mod:`workloads.straggling`) and prices the token (:mod:`workloads.token_cost`)
into a :class:`workloads.decode_result.DecodeResult`.
"""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx
import numpy as np

from collectives.calibration import LIBRARIES, cost_model, library_costs, link_types
from netsim.core.errors import ConfigError
from netsim.core.units import parse_time
from netsim.core.validate import require_choice, require_int
from workloads import moe
from workloads import stragglers as strag
from workloads.chips import Chip
from workloads.decode_result import DecodeResult, FabricSite
from workloads.fabric import (
    ALLREDUCE_ALGOS,
    BACKENDS,
    CollectiveRun,
    Fabric,
    _allreduce,
    _elements,
    _library_notes,
    library_record,
    run_groups,
)
from workloads.landing import _check_landing
from workloads.models import TransformerModel
from workloads.moe_bytes import moe_wire_record, with_wire_dtypes
from workloads.moe_collectives import DISPATCH_ALGOS, _check_moe_options, _moe_runs
from workloads.moe_kernels import KernelModel, kernel_costs_record, moe_kernel_model
from workloads.roofline import decode_collectives, decode_compute, prefill_compute
from workloads.sharding import Parallelism
from workloads.straggling import _straggle, _with_link_delays
from workloads.token_cost import _cost
from workloads.topology import layout, resolve_topology, topology_chips

__all__: list[str] = []


def _phase(
    phase: str,
    m: TransformerModel,
    c: Chip,
    topo: str | nx.Graph,
    *,
    tp: int,
    pp: int,
    ep: int,
    dp: int | None,
    batch: int,
    seq: int,
    allreduce: str,
    dispatch: str,
    combine: str | None,
    moe_routing: str,
    moe_mode: str | None,
    dispatch_dtype: str | None,
    combine_dtype: str | None,
    backend: str,
    forwarding: str,
    routing: str,
    library: str,
    step_overhead: float | str | None,
    collective_launch: float | str | None,
    landing: str,
    stragglers: str,
    straggler_policy: str,
    tokens: int,
    usable_fraction: float,
    chip_price: float | None,
    seed: int,
    moe_kernels: str | None = None,
) -> DecodeResult:
    require_choice("allreduce", allreduce, ALLREDUCE_ALGOS)
    require_choice("dispatch", dispatch, DISPATCH_ALGOS)
    params_combine, params_mode = combine, moe_mode
    combine, moe_mode = _check_moe_options(dispatch, combine, moe_mode)
    require_choice("backend", backend, BACKENDS)
    batch = require_int("batch", batch, min=1)
    tokens = require_int("tokens", tokens, min=1)
    seed = require_int("seed", seed, min=0)
    require_choice("library", library, LIBRARIES)
    step = None if step_overhead is None else parse_time(step_overhead, "step_overhead")
    launch = (
        None if collective_launch is None else parse_time(collective_launch, "collective_launch")
    )
    spec = strag.parse_stragglers(stragglers)
    policy = strag.parse_policy(straggler_policy)
    moe.parse_routing(moe_routing)
    m = with_wire_dtypes(m, dispatch_dtype, combine_dtype)
    kernels = moe_kernel_model(moe_kernels, dispatch, c, active=m.is_moe and ep > 1)
    zone, landing_latency = _check_landing(landing, c)
    if not (m.is_moe and ep > 1):
        given = {
            "dispatch": (dispatch, "direct"),
            "combine": (params_combine, None),
            "moe_routing": (moe_routing, "uniform"),
            "moe_mode": (params_mode, None),
            "dispatch_dtype": (dispatch_dtype, None),
            "combine_dtype": (combine_dtype, None),
        }
        for key, (value, default) in given.items():
            if value != default:
                raise ConfigError(
                    f"{key}: applies to MoE layers with expert parallelism (ep > 1); "
                    f"{m.name} with ep={ep} has none, got {value!r}"
                )
    g0 = resolve_topology(topo)
    chips = topology_chips(g0)
    par = layout(len(chips), tp=tp, pp=pp, ep=ep, dp=dp)
    topo_name = topo if isinstance(topo, str) else str(g0.graph.get("name", "graph"))
    costs = library_costs(library, link_types(g0), step=step, launch=launch)
    params: dict[str, Any] = {
        "llm": m.name,
        "chip": c.name,
        "topo": topo_name,
        "tp": tp,
        "pp": pp,
        "ep": ep,
        "dp": par.dp,
        "batch": batch,
        ("context" if phase == "decode" else "prompt"): seq,
        "allreduce_requested": allreduce,
        "dispatch": dispatch if m.is_moe and ep > 1 else None,
        "combine": combine if m.is_moe and ep > 1 else None,
        "moe_routing": moe_routing if m.is_moe and ep > 1 else None,
        "moe_mode": moe_mode if m.is_moe and ep > 1 else None,
        **moe_wire_record(m, m.is_moe and ep > 1),
        **kernels.record(),
        "backend": backend,
        "forwarding": forwarding,
        "routing": routing,
        **library_record(library, costs),
        "landing": zone,
        "landing_latency_s": landing_latency,
        "stragglers": spec.text,
        "straggler_policy": straggler_policy if isinstance(straggler_policy, str) else policy.kind,
        "tokens": tokens,
        "seed": seed,
    }
    if phase == "decode":
        est = decode_compute(
            m,
            c,
            batch=batch,
            context=seq,
            tp=tp,
            pp=pp,
            ep=ep,
            require_fit=False,
            usable_fraction=usable_fraction,
        )
    else:
        est = prefill_compute(
            m,
            c,
            batch=batch,
            prompt=seq,
            tp=tp,
            pp=pp,
            ep=ep,
            require_fit=False,
            usable_fraction=usable_fraction,
        )
    report = est.capacity
    capacity = {**report.to_dict(), "summary": report.summary()}
    if not report.fits:
        return DecodeResult(phase, params, False, capacity, notes=(report.summary(),))

    g = _with_link_delays(g0, spec, seed)
    inst = sorted(
        par.rank(tp_i=t, dp_i=e, pp_i=s) for s in range(pp) for e in range(ep) for t in range(tp)
    )
    fabric = Fabric(
        g,
        chips,
        backend,
        forwarding,
        routing,
        seed,
        costs.step,
        landing_latency,
        frozenset(chips[r] for r in inst),
    ).with_costs(costs, cost_model(library, link_types(g0), step=step, launch=launch))
    step_tokens = batch if phase == "decode" else batch * seq
    sites, notes = _sites(
        m,
        par,
        fabric,
        chips,
        step_tokens,
        allreduce,
        dispatch,
        combine,
        moe_routing,
        moe_mode,
        seed,
        kernels,
    )
    params.update(kernel_costs_record(sites))
    ar = next((s.run.algo for s in sites if s.name == "tp_allreduce"), None)
    model_name = next((s.run.model for s in sites), f"{backend} (no collectives)")

    fabric_nominal = sum(s.time_s * s.count for s in sites)
    fabric_tok, subst = _straggle(sites, chips, inst, spec, policy, tokens, seed)
    latencies = est.time + fabric_tok
    report_s = strag.straggler_report(latencies, subst[None, :] if subst.size else None)
    if not subst.size:
        report_s["substituted_fraction"] = 0.0
    latency = float(np.mean(latencies))
    per_step = batch if phase == "decode" else batch * seq
    per_user = 1.0 / latency if phase == "decode" else seq / latency
    cost = _cost(m, c, est, sites, par, latency, per_step, chip_price)
    notes.extend(_library_notes(library, costs))
    if spec.components:
        notes.append(
            "stragglers: chip delays applied to simulated per-chip tails (see docs/decode.md); "
            f"nominal fabric {fabric_nominal:.6g} s per token"
        )
    return DecodeResult(
        phase=phase,
        params=params,
        fits=True,
        capacity=capacity,
        token_latency_s=latency,
        compute_s=est.compute_bound_time,
        memory_s=est.memory_bound_time,
        launch_s=est.launch_time,
        fabric_s=float(np.mean(fabric_tok)),
        tokens_per_s=per_user,
        tokens_per_s_per_chip=per_step / latency / par.instance_size,
        sites=tuple(sites),
        allreduce=ar,
        model=model_name,
        latency_percentiles=report_s,
        token_latencies_s=tuple(float(x) for x in np.atleast_1d(latencies)),
        cost=cost,
        notes=tuple(notes),
    )


def _sites(
    m: TransformerModel,
    par: Parallelism,
    fabric: Fabric,
    chips: list[int],
    step_tokens: int,
    allreduce: str,
    dispatch: str,
    combine: str,
    moe_routing: str,
    moe_mode: str,
    seed: int,
    kernels: KernelModel | None = None,
) -> tuple[list[FabricSite], list[str]]:
    tp, pp, ep = par.tp, par.pp, par.ep
    notes: list[str] = []
    runs: dict[str, CollectiveRun] = {}
    sites: list[FabricSite] = []
    act = m.act_dtype_bytes

    def stage_chips(s: int, tp_only: bool = False) -> tuple[int, ...]:
        es = range(1) if tp_only else range(ep)
        return tuple(chips[par.rank(tp_i=t, dp_i=e, pp_i=s)] for e in es for t in range(tp))

    for s in range(pp):
        for need in decode_collectives(m, batch=step_tokens, tp=tp, pp=pp, ep=ep, stage=s):
            if need.kind == "all_reduce":
                key = f"ar:{need.nbytes}"
                if key not in runs:
                    count, size = _elements(need.nbytes, act)
                    groups = [[chips[r] for r in grp] for grp in par.tp_groups()]
                    runs[key] = _allreduce(fabric, groups, count, size, allreduce)
                sites.append(
                    FabricSite(
                        "tp_allreduce",
                        need.kind,
                        s,
                        need.nbytes,
                        need.count,
                        stage_chips(s, tp_only=True),
                        runs[key],
                    )
                )
            elif need.kind == "all_to_all":
                if "dispatch" not in runs:
                    runs["dispatch"], runs["combine"] = _moe_runs(
                        m,
                        par,
                        fabric,
                        chips,
                        step_tokens // ep,
                        dispatch,
                        combine,
                        moe_routing,
                        moe_mode,
                        seed,
                        kernels,
                    )
                which = "dispatch" if need.name == "moe_dispatch" else "combine"
                sites.append(
                    FabricSite(
                        need.name,
                        need.kind,
                        s,
                        need.nbytes,
                        need.count,
                        stage_chips(s),
                        runs[which],
                    )
                )
            else:  # pipeline send
                key = f"pp:{need.nbytes}"
                if key not in runs:
                    count, size = _elements(need.nbytes, act)
                    pairs = [
                        [chips[a], chips[b]]
                        for pipe in par.pp_groups()
                        for a, b in itertools.pairwise(pipe)
                    ]
                    runs[key] = run_groups(
                        fabric, "pp_send", "sendrecv", "direct", pairs, count, size
                    )
                sites.append(
                    FabricSite(
                        "pp_send", need.kind, s, need.nbytes, need.count, stage_chips(s), runs[key]
                    )
                )
    if m.is_moe and ep > 1:
        notes.append(
            "moe: one layer's routing is simulated and reused for every MoE layer; with tp > 1 "
            "each of the tp parallel EP groups carries the full tokens"
        )
    return sites, notes
