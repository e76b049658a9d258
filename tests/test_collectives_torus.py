"""The multi-dimensional bidirectional all-reduce (``allreduce`` ``torus``): correctness on
data, its alpha-beta closed form on tori, and what the injection default buys."""

from __future__ import annotations

import math

import pytest

from collectives import build, make_backend, run, run_collective
from collectives.algorithms import algorithms_for
from collectives.multidim import suits
from collectives.schedule import execute
from collectives.verify import check_result, random_inputs
from netsim.core.errors import ConfigError
from topologies.registry import build as build_topo
from topologies.torus import mesh, torus
from topologies.wafer import wafer

MTU, HEADER = 512, 32  # the ici link type's packets (netsim.core.linktypes)


def _wire(m: int) -> int:
    return m + max(1, math.ceil(m / MTU)) * HEADER


def _closed_form(n: int, k: int, stream: int, a: float, B: float) -> float:
    """T = 2 sum_t (k-1) (a + wire(S k^-(t+1)) / B), S elements (bytes) per stream."""
    return 2 * sum((k - 1) * (a + _wire(stream // k ** (t + 1)) / B) for t in range(n))


def test_registered_for_allreduce():
    assert "torus" in algorithms_for("allreduce")


@pytest.mark.parametrize(
    ("graph", "count"),
    [
        (torus("4x4"), 37),
        (torus("2x3x4"), 100),  # mixed radices, a radix-2 ring (one edge of two links)
        (mesh("3x3"), 50),  # open lines: the ring closes back along the line
        (wafer("2x1", "1x2"), 11),
        (torus("4x4"), 5),  # fewer elements than streams x chips: empty chunks skipped
        (torus("4x4"), 0),
    ],
)
def test_sums_right_on_data_on_every_backend_and_in_any_order(graph, count):
    """Random-order execution (race detection) and the timed runs with data riding the
    simulation (packet, flow, analytical) all leave the sum at every rank."""
    s = build(
        "allreduce", "torus", list(range(graph.graph["chips"])), count, itemsize=4, graph=graph
    )
    inputs = random_inputs(s, 7)
    for seed in range(4):
        check_result(s, inputs, execute(s, inputs, seed=seed))
    for backend in ("packet", "flow", "analytical"):
        check_result(s, inputs, run(make_backend(graph, backend), s, data=inputs).buffers)


def test_a_subset_of_ranks_uses_its_own_grid():
    """Ranks given out of order, on part of a torus: the grid is their coordinates."""
    G = torus("4x4x2")
    ranks = [9, 1, 8, 0, 5, 13, 4, 12]  # (x, y, z) with x in {0, 1}, y in {0, 2}, z in {0, 1}
    s = build("allreduce", "torus", ranks, 24, itemsize=4, graph=G)
    inputs = random_inputs(s, 3)
    check_result(s, inputs, execute(s, inputs, seed=1))
    check_result(s, inputs, run(make_backend(G, "flow"), s, data=inputs).buffers)


def test_dims_give_the_grid():
    s = build("allreduce", "torus", range(8), 48, dims="2x2x2")
    inputs = random_inputs(s, 5)
    check_result(s, inputs, execute(s, inputs, seed=2))
    # 6 streams x 6 phases (3 reduce-scatters, 3 all-gathers) x 4 lines x 2 transfers
    assert len(s.transfers) == 6 * 6 * 4 * 2


@pytest.mark.parametrize(
    ("dims", "backends"),
    [("4x4", ("analytical", "flow", "packet")), ("4x4x4", ("analytical", "flow"))],
)
def test_closed_form_on_a_torus(dims, backends):
    """k-ary n-cube, 2n streams of S bytes, one neighbour hop per ring step: the time is the
    closed form of the module docstring on every backend (streams use disjoint links and the
    chip injects the sum of its links, the torus default)."""
    a, B, k = 1e-7, 50e9, 4
    G = torus(dims, latency=a, bandwidth=B)
    n = len(G.graph["params"]["dims"])
    stream = 1000 * k**n
    s = build("allreduce", "torus", range(k**n), 2 * n * stream, graph=G)
    T = _closed_form(n, k, stream, a, B)
    for backend in backends:
        assert run(make_backend(G, backend), s).time_s == pytest.approx(T, rel=1e-9)


def test_mesh_lines_carry_both_streams_on_every_link():
    """On a mesh the ring of a line closes back along it, so every directed link carries the
    + and the - stream at once: with zero latency the flow and packet models give twice the
    torus bandwidth term, exactly; the contention-free analytical model misses the sharing
    and gives the torus time."""
    B, k, n = 50e9, 4, 2
    stream = 1000 * k**n
    G = mesh("4x4", latency=0.0)
    s = build("allreduce", "torus", range(16), 2 * n * stream, graph=G)
    torus_time = _closed_form(n, k, stream, 0.0, B)
    for backend in ("flow", "packet"):
        assert run(make_backend(G, backend), s).time_s == pytest.approx(2 * torus_time, rel=1e-9)
    assert run(make_backend(G, "analytical"), s).time_s == pytest.approx(torus_time, rel=1e-9)


def test_bandwidth_term_without_headers():
    """Without headers the bandwidth term sums to (N / n)(1 - 1/p) / B, so busbw -> 2nB."""
    n, k, B = 3, 4, 50e9
    p, stream = k**n, 1000 * k**n
    N = 2 * n * stream
    terms = 2 * sum((k - 1) * (stream / k ** (t + 1)) / B for t in range(n))
    assert terms == pytest.approx(N / n * (1 - 1 / p) / B, rel=1e-12)
    assert 2 * (p - 1) / p * N / terms == pytest.approx(2 * n * B, rel=1e-12)


def test_one_link_interface_shares_it_between_the_streams():
    """With injection_bandwidth = one link, the 2n = 4 streams of a 2D torus share the
    interface: on the flow model each gets B/4, so the bandwidth term is 4x the default's."""
    a, B, k, n = 1e-7, 50e9, 4, 2
    stream = 1000 * k**n
    s = build("allreduce", "torus", range(16), 2 * n * stream, dims="4x4")
    fast = run(make_backend(torus("4x4", latency=a), "flow"), s).time_s
    slow = run(make_backend(torus("4x4", latency=a, injection_bandwidth=B), "flow"), s).time_s
    latency = 2 * n * (k - 1) * a
    assert fast == pytest.approx(_closed_form(n, k, stream, a, B), rel=1e-9)
    assert slow - latency == pytest.approx(2 * n * (fast - latency), rel=1e-9)


def test_beats_the_rings_on_a_torus():
    """Every link in both directions vs. one ring (one link out of each chip)."""
    G = torus("4x4")
    t = {
        algo: run_collective(G, "allreduce", algo, "1MiB", backend="flow")["time_s"]
        for algo in ("ring", "ring-bidir", "torus")
    }
    assert t["torus"] < t["ring-bidir"] < t["ring"]


def test_tpu_v4_cube_busbw_against_google_figure():
    """TPU v4: Google Cloud documents an all-reduce bandwidth of 1.1 PB/s per 4096-chip pod
    (docs.cloud.google.com/tpu/docs/v4), 1.1e15 / 4096 = 269 GB/s per chip. netsim's
    torus all-reduce on one 4x4x4 cube (flow model, 256 MiB, ICI 50 GB/s per link per
    direction, hardware only: no library costs for ICI) must be within 15% of it. Not
    fitted: the link bandwidth comes from the TPU v4 paper, the figure is a pod spec, not a
    cube measurement (see docs/collectives.md)."""
    G = build_topo("tpu-v4-cube")
    r = run_collective(G, "allreduce", "torus", "256MiB", backend="flow")
    published = 1.1e15 / 4096
    assert r["busbw"] == pytest.approx(published, rel=0.15)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"chunks": 2}, "chunks: torus does not pipeline"),
        ({"colour": 1}, "colour: not an option of the torus algorithm"),
        ({"dims": "3x3"}, "dims: the grid 3x3 must hold the 8 ranks"),
    ],
)
def test_refusals(kw, match):
    with pytest.raises(ConfigError, match=match):
        build("allreduce", "torus", range(8), 16, **kw)


def test_needs_a_grid():
    import networkx as nx

    with pytest.raises(ConfigError, match="dims: torus needs a rank grid"):
        build("allreduce", "torus", range(4), 16, graph=nx.path_graph(4))
    with pytest.raises(ConfigError, match=r"dims: torus needs .* \(got topology torus\)"):
        build("allreduce", "torus", [0, 5], 16, graph=torus("4x4"))


def test_one_rank_is_empty():
    s = build("allreduce", "torus", [3], 16, dims="1")
    assert s.transfers == []


def test_decode_auto_picks_torus_on_a_torus():
    """A TP16 decode on a 4x4 torus (flow model, so link sharing counts): at batch 256 the
    all-reduce is bandwidth-bound and ``allreduce="auto"`` picks ``torus``, the candidate
    that uses all four links of every chip."""
    from workloads.decode import decode
    from workloads.models import TransformerModel

    m = TransformerModel(
        name="tp16", layers=2, hidden=1024, heads=16, kv_heads=16, head_dim=64, ffn=1024, vocab=256
    )
    r = decode(m, "tpu-v4", "torus:dims=4x4", tp=16, batch=256, context=16, allreduce="auto",
               landing="sram", backend="flow")  # fmt: skip
    times = {k: v for k, v in r.sites[0].run.candidates.items() if v is not None}
    assert r.allreduce == "torus" and times["torus"] == min(times.values())


def test_suits_grids_of_direct_networks_only():
    G = torus("4x4")
    assert suits(range(16), G) and suits([0, 1, 4, 5], G) and suits([0, 4, 8, 12], G)
    assert not suits([0, 5], G)  # (0, 0) and (1, 1): not a grid
    assert not suits([3], G)  # one rank: nothing to reduce
    assert suits(range(6), mesh("2x3")) and suits(range(4), wafer("2x2"))
    assert not suits(range(8), build_topo("dgx-h100"))  # switched: the NCCL algorithms
    assert not suits(range(4), None)
