"""NVLS+tree on two or more DGX H100: flow against packet, with and without the NIC in the
GPU's NVLink injection budget (docs/validation.md, "Why the 2-node NVLS+tree row differed").

The ``hierarchical`` topology gives every GPU an ``injection_bandwidth`` equal to its NVLink
aggregate plus its NIC (the NIC hangs off the GPU's PCIe, beside its NVLinks). This script
times NCCL's NVLS+tree all-reduce on both backends as built, then with the NIC inside the
NVLink budget (the topology before that change), and prints per backend the time, busbw,
when the last intra-node reduce (stage 1) arrived and how busy the busiest InfiniBand link
was.

Measured (1 GiB, two nodes, default pieces): 3.926 ms and 3.922 ms (513 GB/s) as built; flow
4.373 ms / 460 GB/s and packet 4.099 ms / 491 GB/s with the NIC inside the NVLink budget.
(Measured before each NVLS+tree channel became its own stream; the script runs the
schedule without NCCL's per-channel cap, ``channel_rate``, which ``run_collective`` adds.)

Run: ``python benchmarks/nvls_tree_backends.py [--nodes N] [--size 1GiB] [--chunks K]
[--backends flow,packet]`` (the packet engine takes about 15 s at two nodes and 1 GiB, and
minutes at four nodes).
"""

from __future__ import annotations

import argparse

import networkx as nx

from collectives import build, calibration, make_backend, run
from netsim.core.units import parse_size
from topologies.registry import build as topology


def _graph(nodes: int, nic_inside: bool) -> nx.Graph:
    G = topology(f"hierarchical:nodes={nodes}")
    if nic_inside:
        for _, d in G.nodes(data=True):
            if d.get("kind") == "chip":
                d["injection_bandwidth"] -= d["nic_bandwidth"]
    return G


def measure(nodes: int, size: int, chunks: int | None, backend: str, nic_inside: bool) -> dict:
    """Time one NVLS+tree all-reduce of ``size`` bytes per rank (float32)."""
    G = _graph(nodes, nic_inside)
    ranks = [v for v, k in G.nodes(data="kind") if k == "chip"]
    s = build("allreduce", "nvls-tree", ranks, size // 4, itemsize=4, graph=G, chunks=chunks)
    be = make_backend(G, backend)
    res = run(be, s, costs=calibration.cost_model("nccl", calibration.link_types(G)))
    stage1 = max(
        res.arrivals[i]
        for i, t in enumerate(s.transfers)
        if G.nodes[t.src].get("kind") == "switch" and t.dst_buf == "x" and len(t.dsts) == 1
    )
    util = be.link_utilisation()
    ib = max(x for (u, v), x in util.items() if G.edges[u, v].get("link") == "ib")
    n = len(ranks)
    return {
        "time_ms": res.time_s * 1e3,
        "busbw_GBs": size / res.time_s * 2 * (n - 1) / n / 1e9,
        "stage1_ms": stage1 * 1e3,
        "busiest_ib": ib,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--backends", default="flow,packet")
    a = ap.parse_args()
    size = parse_size(a.size, "size")
    for nic_inside in (False, True):
        where = "NIC inside the NVLink budget" if nic_inside else "as built"
        for backend in a.backends.split(","):
            r = measure(a.nodes, size, a.chunks, backend, nic_inside)
            print(
                f"{where:30s} {backend:7s} time {r['time_ms']:.3f} ms  busbw "
                f"{r['busbw_GBs']:.1f} GB/s  stage 1 done {r['stage1_ms']:.3f} ms  "
                f"busiest IB link {r['busiest_ib']:.1%} busy",
                flush=True,
            )


if __name__ == "__main__":
    main()
