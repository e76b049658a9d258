"""The collectives core: correctness on data, closed forms, calibration, and refusals."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectives import build, make_backend, merge, run, run_collective
from collectives.algorithms import ALGORITHMS, busbw_factor
from collectives.schedule import execute, expected
from collectives.verify import check_result, random_inputs
from netsim.core.errors import ConfigError
from topologies.graph import add_chip, add_link, finish
from topologies.nvswitch import PRESETS, nvswitch
from topologies.torus import torus
from topologies.trees import fat_tree

BUILDERS = [
    ("allreduce", "ring"),
    ("allreduce", "ring-bidir"),
    ("allreduce", "recursive-doubling"),
    ("allreduce", "rabenseifner"),
    ("allreduce", "oneshot"),
    ("allreduce", "twoshot"),
    ("reduce_scatter", "ring"),
    ("reduce_scatter", "direct"),
    ("reduce_scatter", "recursive-halving"),
    ("allgather", "ring"),
    ("allgather", "direct"),
    ("allgather", "recursive-doubling"),
    ("broadcast", "ring"),
    ("broadcast", "direct"),
    ("reduce", "ring"),
    ("reduce", "direct"),
    ("alltoall", "direct"),
    ("sendrecv", "direct"),
]
POW2 = {"recursive-doubling", "rabenseifner", "recursive-halving"}
PIPELINED = {"ring", "ring-bidir"}


def ring_graph(k: int, bw: float = 1e9, lat: float = 1e-7, inj: float | None = None) -> nx.Graph:
    """A 1-D torus of k chips (ici links: MTU 512 B, 32 B headers, no switches); the chips'
    interface is one link's bandwidth unless ``inj`` is given."""
    G = nx.Graph()
    extra = {} if inj is None else {"injection_bandwidth": inj}
    for i in range(k):
        add_chip(G, i, (i, 0), coord=(i,), **extra)
    for i in range(k):
        add_link(G, i, (i + 1) % k, link="ici", bandwidth=bw, latency=lat, dim=0, wrap=i == k - 1)
    return finish(G, "torus", {"dims": (k,)})


GRAPHS = {
    "ring8": ring_graph(8),
    "torus4x4": torus((4, 4)),
    "fat_tree4": fat_tree(4),
    "dgx-h100": nvswitch(**PRESETS["dgx-h100"]["params"]),
}


def _args(op, algo, p, count, chunks, root, rng):
    kw = {"chunks": chunks if algo in PIPELINED else None}
    if op in ("broadcast", "reduce"):
        kw["root"] = root % p
    if op == "alltoall":
        m = rng.integers(0, 6, size=(p, p))
        np.fill_diagonal(m, 0)
        kw["matrix"] = m
        count = int(m.sum(axis=1).max()) if p else 0
    return count, kw


def _p_for(op, algo, p):
    if op == "sendrecv":
        return 2
    if algo in POW2:
        return 1 << (p.bit_length() - 1)
    return p


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(BUILDERS),
    p=st.integers(1, 8),
    count=st.integers(0, 37),
    chunks=st.integers(1, 3),
    root=st.integers(0, 7),
    graph=st.sampled_from(sorted(GRAPHS)),
    seed=st.integers(0, 2**16),
)
def test_every_algorithm_sums_right_on_data_and_in_any_order(
    case, p, count, chunks, root, graph, seed
):
    """The timed run (packet engine, data riding the simulation) and random-order execution
    (race detection, several seeds) both leave what :func:`expected` says."""
    op, algo = case
    G = GRAPHS[graph]
    rng = np.random.default_rng(seed)
    p = _p_for(op, algo, p)
    chips = rng.permutation(G.graph["chips"])[:p].tolist()
    count, kw = _args(op, algo, p, count, chunks, root, rng)
    s = build(op, algo, chips, count, itemsize=4, graph=G, **kw)
    inputs = random_inputs(s, seed)
    for order in range(4):
        check_result(s, inputs, execute(s, inputs, seed=seed + order))
    res = run(make_backend(G, "packet", seed=seed % 7), s, data=inputs, multipath=True)
    check_result(s, inputs, res.buffers)
    assert res.transfers == len(s.transfers)
    assert all(a >= 0 for a in res.arrivals)


@pytest.mark.parametrize("op,algo", BUILDERS)
def test_concurrent_groups_on_a_fat_tree(op, algo):
    """Four groups of four ranks at once on one fabric: every group still gets its result."""
    ranks = "0-7" if op == "sendrecv" else None
    groups = 2 if op == "sendrecv" else 4
    r = run_collective(fat_tree(4), op, algo, "96B", groups=groups, ranks=ranks, check=True)
    assert r["check"] is True
    assert r["groups"] == 4
    assert r["time_s"] > 0


def test_merged_groups_are_checked_one_by_one():
    G = GRAPHS["torus4x4"]
    scheds = [build("allreduce", "ring", list(range(i, 16, 4)), 9, graph=G) for i in range(4)]
    s = merge(scheds)
    inputs = random_inputs(s, 3)
    check_result(s, inputs, execute(s, inputs, seed=5))
    assert len(expected(s, inputs)) == 16


# --------------------------------------------------------------------------- closed forms


def _wire(m: int, mtu: int, header: int) -> int:
    return m + max(1, math.ceil(m / mtu)) * header


@pytest.mark.parametrize("p,m", [(4, 1000), (6, 3000), (8, 512)])
def test_ring_allreduce_closed_form_on_a_ring(p, m):
    """T = 2(p-1) (a + (m + ceil(m/M) h) / B): one hop per step, no switch, cut-through,
    the chip's interface as fast as its link (so packets stream back to back)."""
    a, B = 1e-7, 1e9
    G = ring_graph(p, B, a)
    s = build("allreduce", "ring", list(range(p)), p * m)
    T = 2 * (p - 1) * (a + _wire(m, 512, 32) / B)
    t_packet = run(make_backend(G, "packet"), s).time_s
    t_ana = run(make_backend(G, "analytical"), s).time_s
    assert t_packet == pytest.approx(T, rel=1e-9)
    assert t_ana == pytest.approx(T, rel=1e-9)


@pytest.mark.parametrize("p", [4, 6])
def test_bidirectional_ring_closed_form_on_a_ring(p):
    """Half the vector each way round, chunk c = n/(2p) per step, both links at once:
    T = 2(p-1)(a + wire(c)/B) when the interface feeds both links (B_inj = 2B); with
    B_inj = B the two directions share it, 2(p-1)(a + 2 wire(c)/B), i.e. no gain over the
    unidirectional ring. The analytical model (no contention) gives the first form."""
    a, B, c = 1e-7, 1e9, 1000
    n = 2 * p * c
    s = build("allreduce", "ring-bidir", list(range(p)), n)
    fast = 2 * (p - 1) * (a + _wire(c, 512, 32) / B)
    shared = 2 * (p - 1) * (a + 2 * _wire(c, 512, 32) / B)
    assert run(make_backend(ring_graph(p, B, a, inj=2 * B), "packet"), s).time_s == (
        pytest.approx(fast, rel=1e-9)
    )
    assert run(make_backend(ring_graph(p, B, a), "packet"), s).time_s == (
        pytest.approx(shared, rel=1e-9)
    )
    assert run(make_backend(ring_graph(p, B, a), "analytical"), s).time_s == (
        pytest.approx(fast, rel=1e-9)
    )
    uni = run(make_backend(ring_graph(p, B, a), "packet"), build("allreduce", "ring", range(p), n))
    assert uni.time_s == pytest.approx(shared, rel=1e-9)


def test_ring_allreduce_overheads_add_exactly():
    """launch + (2(p-1) - 1) dependent steps * step_overhead + (p-1) reductions of 3m/bw."""
    p, m, a, B = 6, 2000, 1e-7, 1e9
    G = ring_graph(p, B, a)
    s = build("allreduce", "ring", list(range(p)), p * m)
    base = 2 * (p - 1) * (a + _wire(m, 512, 32) / B)
    rbw, step, launch = 5e9, 1e-6, 3e-6
    for backend in ("packet", "analytical"):
        t = run(
            make_backend(G, backend), s, step_overhead=step, launch_overhead=launch,
            reduce_bandwidth=rbw,
        ).time_s  # fmt: skip
        want = base + launch + (2 * (p - 1) - 1) * step + (p - 1) * 3 * m / rbw
        assert t == pytest.approx(want, rel=1e-9)


def test_straggler_delays_the_ring_by_its_delay():
    p, m = 5, 1000
    G = ring_graph(p)
    s = build("allreduce", "ring", list(range(p)), p * m)
    t0 = run(make_backend(G, "analytical"), s).time_s
    t1 = run(make_backend(G, "analytical"), s, start_delay={2: 4e-6}).time_s
    assert t1 == pytest.approx(t0 + 4e-6, rel=1e-9)


def test_recursive_doubling_takes_log2p_steps_on_one_switch():
    """T = log2(p) (2 l + d + (n + ceil(n/M) h) / B) on a single NVSwitch (nvlink defaults:
    l = 10 ns, d = 100 ns, B = 25 GB/s, M = 256 B, h = 16 B)."""
    G = nvswitch(gpus=8, switches=1, links_per_gpu=1)
    n = 4096
    s = build("allreduce", "recursive-doubling", list(range(8)), n)
    T = 3 * (2 * 10e-9 + 100e-9 + _wire(n, 256, 16) / 25e9)
    for backend in ("packet", "analytical"):
        assert run(make_backend(G, backend), s).time_s == pytest.approx(T, rel=1e-9)
        # The local sum belongs to the step that fed it: log2(p) - 1 step overheads.
        t = run(make_backend(G, backend), s, step_overhead=1e-6).time_s
        assert t == pytest.approx(T + 2e-6, rel=1e-9)


@pytest.mark.parametrize(
    "op,algo,halves",
    [
        ("reduce_scatter", "recursive-halving", 1),
        ("allgather", "recursive-doubling", 1),
        ("allreduce", "rabenseifner", 2),
    ],
)
def test_recursive_halving_and_doubling_closed_forms_on_one_switch(op, algo, halves):
    """log2 p steps of n/2, n/4, ..., n/p bytes: sum_k (2l + d + wire(n/2^k)/B); Rabenseifner
    is the halving reduce-scatter then the doubling all-gather, twice that."""
    G = nvswitch(gpus=8, switches=1, links_per_gpu=1)
    n = 8 * 4096
    s = build(op, algo, list(range(8)), n)
    T = halves * sum(2 * 10e-9 + 100e-9 + _wire(n >> k, 256, 16) / 25e9 for k in (1, 2, 3))
    for backend in ("packet", "analytical"):
        assert run(make_backend(G, backend), s).time_s == pytest.approx(T, rel=1e-9)


@pytest.mark.parametrize("step", [0.0, 0.6e-6])
def test_oneshot_twoshot_crossover_matches_the_closed_form(step):
    """Single switch, one link of B per GPU, alpha = 2l + d (packet engine, exact):
    one-shot  T1 = alpha + (p-1) wire(n) / B        (p-1 copies leave by one link)
    two-shot  T2 = 2 alpha + step + 2 (p-1) wire(n/p) / B
    Without headers they cross at n* = (alpha + step) B p / ((p-1)(p-2)): one-shot wins
    below, two-shot above."""
    p, lat, d, B = 8, 10e-9, 100e-9, 25e9
    alpha = 2 * lat + d
    G = nvswitch(gpus=p, switches=1, links_per_gpu=1)
    n_star = (alpha + step) * B * p / ((p - 1) * (p - 2))
    for n, winner in ((n_star / 3, "oneshot"), (n_star * 3, "twoshot")):
        n = int(n) // p * p
        t = {a: run(make_backend(G, "packet"), build("allreduce", a, range(p), n),
                    step_overhead=step).time_s for a in ("oneshot", "twoshot")}  # fmt: skip
        assert t["oneshot"] == pytest.approx(alpha + (p - 1) * _wire(n, 256, 16) / B, rel=1e-9)
        assert t["twoshot"] == pytest.approx(
            2 * alpha + step + 2 * (p - 1) * _wire(n // p, 256, 16) / B, rel=1e-9
        )
        assert min(t, key=t.get) == winner


def test_chain_broadcast_pipelines_and_analytical_is_a_lower_bound():
    """Packet engine, cut-through: chunks queue on each link behind the previous one,
    T = (p-1)(a + s) + (k-1) s with s = wire(n/k)/B; the analytical model ignores the
    queueing, (p-1)(a + s) <= T."""
    p, k, n, a, B = 6, 4, 4000, 1e-7, 1e9
    G = ring_graph(p, B, a)
    s = build("broadcast", "ring", list(range(p)), n, chunks=k)
    ser = _wire(n // k, 512, 32) / B
    t_packet = run(make_backend(G, "packet"), s).time_s
    t_ana = run(make_backend(G, "analytical"), s).time_s
    assert t_packet == pytest.approx((p - 1) * (a + ser) + (k - 1) * ser, rel=1e-9)
    assert t_ana == pytest.approx((p - 1) * (a + ser), rel=1e-9)
    one = run(make_backend(G, "packet"), build("broadcast", "ring", list(range(p)), n, chunks=1))
    assert t_packet < one.time_s


@pytest.mark.parametrize("algo", ["ring", "oneshot", "twoshot", "rabenseifner"])
def test_analytical_never_exceeds_packet(algo):
    r = run_collective(GRAPHS["dgx-h100"], "allreduce", algo, "256KiB")
    assert r["analytical_time_s"] <= r["time_s"] * (1 + 1e-9)


def test_oneshot_wins_small_twoshot_wins_large_on_dgx_h100():
    """One-shot sends (p-1) n bytes per chip in one step, two-shot 2(p-1)n/p in two."""
    G = GRAPHS["dgx-h100"]
    small = {a: run_collective(G, "allreduce", a, "1KiB")["time_s"] for a in ("oneshot", "twoshot")}
    large = {a: run_collective(G, "allreduce", a, "4MiB")["time_s"] for a in ("oneshot", "twoshot")}
    assert small["oneshot"] < small["twoshot"]
    assert large["twoshot"] < large["oneshot"]


def test_alltoall_skewed_matrix_is_bound_by_the_busiest_sender():
    """A hot sender's bytes leave through its one interface: T >= its bytes / B_inj."""
    G = GRAPHS["fat_tree4"]
    p = 8
    m = np.ones((p, p), dtype=int) * 64
    m[0, :] = 4096
    np.fill_diagonal(m, 0)
    r = run_collective(G, "alltoall", "direct", None, ranks="0-7", matrix=m, itemsize=1, check=True)
    inj = G.nodes[0]["injection_bandwidth"]
    assert r["time_s"] >= 7 * 4096 / inj
    assert r["check"] is True


# --------------------------------------------------------------------------- calibration


def test_dgx_h100_ring_allreduce_matches_nccl_tests():
    """Published: on 8 H100 SXM (DGX H100), NCCL ring all-reduce reaches a busbw of about
    370 GB/s at large sizes (S. Jeaugey, NVIDIA/nccl-tests issue 212, 2024: '450GB/s is the
    line rate. With the protocol overhead (~20%) NCCL can get an effective NVLink bandwidth
    of 370GB/s ... when running with NCCL_ALGO=RING'), and nccl-tests shows 12-25 us at the
    smallest sizes. Defaults of collectives.calibration, packet backend."""
    G = GRAPHS["dgx-h100"]
    small = run_collective(G, "allreduce", "ring", "8B")
    big = run_collective(G, "allreduce", "ring", "1GiB")
    assert 12e-6 <= small["time_s"] <= 25e-6
    assert 360e9 <= big["busbw"] <= 380e9
    assert big["busbw"] == pytest.approx(big["algbw"] * 2 * 7 / 8)
    assert big["network_model"] == "packet/cut-through"


def test_result_records_model_seed_version_and_costs():
    r = run_collective(GRAPHS["ring8"], "allgather", "ring", "1KiB", seed=3, backend="analytical")
    for key in ("network_model", "seed", "netsim_version", "step_overhead", "analytical_time_s"):
        assert key in r
    assert r["seed"] == 3 and r["network_model"] == "analytical/alpha-beta"
    assert r["step_overhead"] == 0.0  # ici: hardware only
    assert r["busbw"] == pytest.approx(r["algbw"] * busbw_factor("allgather", 8))


# --------------------------------------------------------------------------- refusals


def test_every_registered_algorithm_resolves():
    for (op, algo), path in ALGORITHMS.items():
        s = None
        try:
            s = build(op, algo, [0, 1], 4, graph=GRAPHS["dgx-h100"],
                      matrix=np.array([[0, 2], [2, 0]]) if op == "alltoall" else None)  # fmt: skip
        except ConfigError as exc:  # applies-to refusals are fine; unavailability is not
            assert "unavailable" not in str(exc), path
        assert s is None or s.op == op


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: build("allreduce", "ringg", [0, 1], 4), "ring, ring-bidir"),
        (lambda: build("allreduce", "recursive-doubling", [0, 1, 2], 4), "power-of-two"),
        (lambda: build("allreduce", "ring", [0, 1], 4, chunks=0), "chunks"),
        (lambda: build("allreduce", "oneshot", [0, 1], 4, chunks=2), "does not pipeline"),
        (lambda: build("allreduce", "ring", [0, 1], 4, root=1), "root"),
        (lambda: build("allreduce", "ring", [0, 1], 4, matrix=[[0]]), "matrix"),
        (lambda: build("sendrecv", "direct", [0, 1, 2], 4), "exactly 2"),
        (lambda: build("allreduce", "ring", [0, 0], 4), "distinct"),
        (lambda: build("allreduce", "ring", [0, 1], 4, foo=1), "foo"),
        (lambda: build("alltoall", "direct", [0, 1], 4, matrix=[[1, 1], [1, 0]]), "diagonal"),
        (lambda: build("gather", "ring", [0, 1], 4), "op"),
        (lambda: build("allreduce", "innetwork", [0, 1], 4, graph=ring_graph(4)), "switch"),
        (lambda: run_collective(ring_graph(6), "allreduce", "ring", "1KiB", groups=4), "groups"),
        (lambda: run_collective(ring_graph(4), "allreduce", "ring", "6B"), "itemsize"),
        (lambda: run_collective(ring_graph(4), "allreduce", "ring", "8B", ranks="0-9"), "ranks"),
        (lambda: make_backend(ring_graph(4), "analytical", buffer=4096), "buffer"),
    ],
)
def test_options_that_do_not_apply_are_refused(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# --------------------------------------------------------------------------- every family

FAMILIES = [
    "torus:dims=2x4",
    "mesh:dims=2x4",
    "wafer:dies=2x2,tiles=2x2",
    "dragonfly:p=2,a=2,h=1",
    "hierarchical:nodes=2,gpus=4",
    "tree:depth=2,radix=4",
    "fat_tree:k=4",
    "nvswitch:gpus=8,switches=2,links_per_gpu=2",
]
EVERY = [
    ("allreduce", a)
    for a in ("ring", "ring-bidir", "tree", "recursive-doubling", "rabenseifner", "oneshot",
              "twoshot", "hierarchical", "innetwork")
] + [("allgather", "recursive-doubling"), ("reduce_scatter", "ring"), ("broadcast", "tree"),
     ("reduce", "ring"), ("alltoall", "direct"), ("sendrecv", "direct")]  # fmt: skip


@pytest.mark.parametrize("spec", FAMILIES)
def test_every_family_runs_every_algorithm_right_in_concurrent_groups(spec):
    """Two groups of four ranks at once (ranks 0-7) on a small instance of every family, the
    result checked on random data; in-network reduction runs where switches reduce and is
    refused, naming the topology, where none does."""
    from topologies.registry import build as build_topology

    G = build_topology(spec)
    reduces = any(G.nodes[v].get("reduction") for v in G if G.nodes[v]["kind"] == "switch")
    for op, algo in EVERY:
        kw = {"ranks": "0-7", "groups": 4 if op != "sendrecv" else 2, "check": True}
        if algo == "hierarchical":
            kw["dims"] = "2x2"
        if algo == "innetwork" and not reduces:
            with pytest.raises(ConfigError, match="reduction"):
                run_collective(G, op, algo, "256B", **kw)
            continue
        r = run_collective(G, op, algo, "256B", **kw)
        assert r["check"] is True and r["time_s"] > 0, (op, algo)
