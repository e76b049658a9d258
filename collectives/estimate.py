"""The contention-free estimate: :func:`run` on an analytical network, in one pass.

On :class:`netsim.core.analytical.AnalyticalNetwork` no message waits for another, so a
schedule's arrival times are a closed form of its dependencies'; :func:`contention_free`
computes them in list order without an event queue, equal bit for bit to the event-driven
run of :func:`collectives.runner.run` (which it falls back to where messages do wait: a
switch's reduction engine, paced channels).
"""

from __future__ import annotations

import math
from typing import Any

from collectives.calibration import CostModel
from collectives.runner import Stripes, SwitchReducers, resolve_costs, run
from collectives.schedule import Schedule
from netsim.core.validate import require_float

__all__ = ["contention_free"]

#: Entries of the message-time memo of one pass before it is cleared (bounds memory only).
_MEMO_SIZE = 1 << 16


def contention_free(
    network: Any,
    schedule: Schedule,
    *,
    step_overhead: float = 0.0,
    reduce_bandwidth: float | None = None,
    launch_overhead: float = 0.0,
    efficiency: float = 1.0,
    multipath: bool = False,
    costs: CostModel | None = None,
    channel_rate: float | None = None,
) -> list[float]:
    """Arrival times of :func:`run` on an analytical network, without an event queue.

    On :class:`netsim.core.analytical.AnalyticalNetwork` no message waits for another, so the
    arrival of transfer ``i`` is a closed form of its dependencies': ``a_i = s_i + T_i`` with
    ``T_i`` the alpha-beta time of its message (:meth:`message_time`; the slowest
    destination of a multicast, the slowest stripe with ``multipath``) and ``s_i`` the last
    arrival among its deps plus its step cost (the launch cost without deps). One pass in
    list order (a topological order) gives every arrival. The floating-point operations are
    those of the event-driven run (a timer set for time ``t`` at ``now`` fires at
    ``now + (t - now)``), so the result equals ``run(network, schedule, ...).arrivals``
    exactly; the tests check it on every algorithm. A schedule that sums into a switch with
    a reduction engine (a FIFO server, served in the order of the arrivals), or whose
    channels are paced (``channel_rate``), is run on the event queue instead.

    Parameters are those of :func:`run` (a fresh network, clock at 0).
    """
    engines = SwitchReducers(network.graph).rate
    paced = channel_rate is not None and bool(schedule.channels)
    if paced or (engines and any(
        t.op == "sum" and len(t.dsts) == 1 and t.dsts[0] in engines for t in schedule.transfers
    )):  # fmt: skip
        return run(
            network,
            schedule,
            step_overhead=step_overhead,
            reduce_bandwidth=reduce_bandwidth,
            launch_overhead=launch_overhead,
            efficiency=efficiency,
            multipath=multipath,
            costs=costs,
            channel_rate=channel_rate,
        ).arrivals
    schedule.validate()
    rbw = None
    if reduce_bandwidth is not None:
        rbw = require_float("reduce_bandwidth", reduce_bandwidth, min=0.0, min_open=True)
    effs, steps, sprays, _, launch = resolve_costs(
        network, schedule, step_overhead, launch_overhead, efficiency, multipath, costs
    )
    chips = {v for v, k in network.graph.nodes(data="kind") if k == "chip"}
    stripes = Stripes(network) if any(sprays) else None
    return _closed_form(schedule, effs, steps, sprays, launch, rbw, chips, stripes, network)


def _closed_form(schedule, effs, steps, sprays, launch, rbw, chips, stripes, network):
    """The pass of :func:`contention_free` over the schedule in list order.

    Message times are memoised per ``(src, dst, bytes, flow)`` (a collective sends the
    same sizes between the same neighbours over and over); the memo is cleared when it
    holds :data:`_MEMO_SIZE` entries, which only bounds memory.
    """
    itemsize = schedule.itemsize
    memo: dict[tuple[int, int, int, int], float] = {}

    def message_time(src: int, dst: int, nbytes: int, flow: int = 0) -> float:
        key = (src, dst, nbytes, flow)
        got = memo.get(key)
        if got is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            got = memo[key] = network.message_time(src, dst, nbytes, flow)
        return got

    arrivals: list[float] = []
    for i, t in enumerate(schedule.transfers):
        src, dsts, deps = t.src, t.dsts, t.deps
        local = dsts == (src,)
        if not deps:
            s = launch if launch > 0 else 0.0
        else:
            a = arrivals[deps[0]] if len(deps) == 1 else max([arrivals[d] for d in deps])
            s = a + ((a + steps[i]) - a) if steps[i] > 0 and not local else a
        nbytes = (t.hi - t.lo) * itemsize
        wire = nbytes if effs[i] == 1.0 else math.ceil(nbytes / effs[i])
        if local:
            end = s
        elif len(dsts) > 1:
            end = s + max(message_time(src, d, wire) for d in dict.fromkeys(dsts))
        elif sprays[i]:
            parts = stripes.split(src, dsts[0], wire)
            end = max(s + message_time(src, dsts[0], b, f) for f, b in parts)
        else:
            end = s + message_time(src, dsts[0], wire)
        if rbw is not None and t.op == "sum" and any(d in chips for d in dsts):
            end = end + ((end + 3.0 * t.count * itemsize / rbw) - end)
        arrivals.append(end)
    return arrivals
