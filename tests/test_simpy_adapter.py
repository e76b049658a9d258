"""The simpy adapter: its functions keep simpy's semantics, and it is the only module that
touches simpy's internals (except the time reads it lists in ``HOT_NOW_READERS``)."""

import re
from pathlib import Path

import pytest
import simpy

from netsim.core.engine.packets import Call, Packet
from netsim.core.engine.simpy_adapter import (
    HOT_NOW_READERS,
    events_scheduled,
    pending,
    run_all,
    schedule_at,
    succeed_at,
)

ROOT = Path(__file__).resolve().parents[1]


def test_events_scheduled_counts_without_using_numbers_up():
    env = simpy.Environment()
    n0 = events_scheduled(env)
    assert events_scheduled(env) == n0  # reading it twice uses nothing up
    env.timeout(1.0)
    env.timeout(2.0)
    assert events_scheduled(env) == n0 + 2
    # The next event simpy schedules gets exactly the number read.
    env.timeout(3.0)
    assert max(seq for _, _, seq, _ in env._queue) == n0 + 2


def test_schedule_at_is_exact_and_first_in_first_out():
    env = simpy.Environment()
    env.run(env.timeout(0.784))
    t = 3.033
    assert env.now + (t - env.now) != t  # what env.schedule(delay=t - now) would give
    seen = []
    for k in range(3):
        schedule_at(env, t, Call(seen.append, k))
    run_all(env, Packet, Call)
    assert seen == [0, 1, 2]
    assert env.now == t
    assert not pending(env)


def test_succeed_at_triggers_now_and_processes_at_t():
    env = simpy.Environment()
    ev = env.event()
    times = []
    ev.callbacks.append(lambda e: times.append(env.now))
    succeed_at(env, 2.5, ev)
    assert ev.triggered and not ev.processed
    env.run()
    assert times == [2.5] and ev.ok and ev.value is None


def test_run_all_raises_a_failed_event_as_simpy_does():
    env = simpy.Environment()
    env.event().fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        run_all(env, Packet, Call)


def _py_files():
    for top in ("netsim", "collectives", "workloads", "topologies"):
        yield from (ROOT / top).rglob("*.py")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_only_the_adapter_touches_simpy_internals():
    private = re.compile(r"\._queue\b|\._eid\b|\._ok\b|\._value\b|repr\(\w*\._eid")
    offenders = [
        f"{_module(p)}: {m.group()}"
        for p in _py_files()
        if _module(p) != "netsim.core.engine.simpy_adapter"
        for m in private.finditer(p.read_text())
    ]
    assert offenders == []


def test_only_the_listed_hot_paths_read_now_directly():
    readers = {
        _module(p)
        for p in _py_files()
        if re.search(r"\benv\._now\b", p.read_text()) and "simpy_adapter" not in p.name
    }
    assert readers <= set(HOT_NOW_READERS)
