"""Scale-up domains joined by a rail-optimised scale-out fabric (DGX SuperPOD style).

Each *node* is one NVLink/NVSwitch scale-up domain built like :func:`topologies.nvswitch.
nvswitch`. Every GPU also has one NIC. The NICs form a two-tier leaf-spine fabric that is
*rail-optimised*: GPU ``r`` of every node (rail ``r``) plugs into the rail-``r`` leaf switch
of its group of nodes, and spine switches join all leaves, so that same-rail traffic of
nodes in one group crosses a single leaf while all other inter-node traffic goes
leaf-spine-leaf. This is the compute fabric of the NVIDIA DGX SuperPOD reference
architecture [1]_.

Fabric sizing (``R = leaf_radix`` ports per leaf and per spine switch)
    A leaf spends ``R/2`` ports on NICs and ``R/2`` on spine uplinks (non-blocking), so a
    *group* (the SuperPOD's scalable unit, SU) holds ``R/2`` nodes and has one leaf per
    rail: ``leaves = gpus * ceil(nodes / (R/2))``. Every leaf wires all ``R/2`` uplinks,
    also when its group is not full (the reference architecture cables a whole SU).
    With ``rails_per_leaf = k`` a leaf serves ``k`` rails, a group has ``R/(2k)`` nodes
    and ``gpus/k`` leaves (GB200: ``k = 4``, a compute tray's NICs, so a group of 8 racks
    is the GB200 SuperPOD's SU; see ``gb200-superpod``).
    ``spines`` is the smallest divisor of ``R/2`` that is ``>= leaves * (R/2) / R``, and
    every leaf connects to every spine with ``(R/2) / spines`` parallel links (one edge
    with that ``count``). With ``R = 64`` this reproduces the switch and cable counts of
    the reference architecture's Table 4 for 1 to 4 SUs (8/16/24/32 leaves,
    4/8/16/16 spines, 256/512/768/1024 spine-leaf cables). A two-tier fabric needs
    ``leaves <= R`` (a spine has one port per leaf at least); beyond that the generator
    refuses (three tiers are not modelled). With a single leaf there are no spines.

References
----------
.. [1] NVIDIA DGX SuperPOD: Next Generation Scalable Infrastructure for AI Leadership,
   Reference Architecture featuring NVIDIA DGX H100 Systems (RA-11333-001, 2023): eight
   ConnectX-7 400 Gb/s (NDR) compute NICs per DGX H100, one per GPU; rail-optimised
   compute fabric of 64-port NDR QM9700 leaf and spine switches; scalable units of 32
   nodes (31 DGX H100 + the UFM appliance); Table 4, compute fabric component counts.
.. [2] NVIDIA DGX H100 User Guide: the eight OSFP compute ports map one ConnectX-7 to each
   GPU.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import link_type
from netsim.core.validate import require_int
from topologies.graph import LinkSpec, add_switch, finish
from topologies.limits import check_chips
from topologies.nvswitch import add_domain, link_split
from topologies.options import opt_bandwidth, opt_time, require_bool, require_link

__all__ = ["NIC", "PARAMETER_KINDS", "PRESETS", "SCALE_UP", "fabric_size", "hierarchical"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "hierarchical": {
        "nodes": "int",
        "gpus": "int",
        "switches": "int",
        "links_per_gpu": "int",
        "scale_up_link": "str",
        "scale_up_bandwidth": "bandwidth",
        "scale_up_latency": "time",
        "nvswitch_latency": "time",
        "nvswitch_reduction": "bool",
        "merge_switches": "bool",
        "nic_link": "str",
        "nic_bandwidth": "bandwidth",
        "nic_latency": "time",
        "leaf_radix": "int",
        "rails_per_leaf": "int",
        "fabric_switch_latency": "time",
        "fabric_reduction": "bool",
    },
}

#: Default link classes of :func:`hierarchical`: NVLink inside a node, NDR InfiniBand NICs.
SCALE_UP = LinkSpec("nvlink")
NIC = LinkSpec("ib")

_SUPERPOD_SOURCE = (
    "DGX H100 nodes (8 H100, 4 NVSwitch, 18 NVLink4 links per GPU; H100 whitepaper 2022) "
    "with one ConnectX-7 NDR 400 Gb/s NIC per GPU on a rail-optimised InfiniBand fabric of "
    "64-port QM9700 leaf and spine switches (NVIDIA DGX SuperPOD reference architecture with "
    "DGX H100, RA-11333-001, 2023: one leaf per rail per scalable unit of 32 nodes, "
    "1 SU = 8 leaves + 4 spines, Table 4)"
)

_B200_SOURCE = (
    "DGX B200 nodes (8 B200, 2 NVLink Switch chips, 18 NVLink5 links per GPU; NVIDIA DGX B200 "
    "User Guide) with their '8 x NVIDIA ConnectX-7 Single Port Cards', InfiniBand up to "
    "400 Gb/s, one per GPU (same guide), on the rail-optimised NDR fabric of the DGX "
    "SuperPOD B200 reference architecture (scalable units of 32 nodes, 64-port leaves and "
    "spines as for DGX H100)"
)

_NVL72_IB_SOURCE = (
    "GB200 NVL72 racks (72 GPUs, 18 NVLink Switch chips, one NVLink5 link from every GPU to "
    "every chip; NVIDIA DGX SuperPOD GB200 reference architecture, 'Network Fabrics') whose "
    "GPUs each have one ConnectX-7 NDR 400 Gb/s NIC ('four CX7 NDR400 NICs for each "
    "four-GPU compute tray', same architecture, 'Key Components', as quoted in "
    "ai-dynamo/aisimulate PR 192). Fabric: a STAND-IN, a non-blocking two-tier "
    "rail-optimised fat tree with one 144-port leaf per rail (72 rails) and 36 spines; the "
    "reference architecture's compute fabric is also non-blocking NDR InfiniBand, but its "
    "leaf and spine counts and rail grouping are not reproduced"
)

_GB200_RA_SOURCE = (
    "NVIDIA DGX SuperPOD GB200 reference architecture (docs.nvidia.com/dgx-superpod/"
    "reference-architecture-scalable-infrastructure-gb200): 'each SU contains 8 DGX GB200 "
    "systems' (racks of 72 GPUs, 18 NVLink Switch chips, one NVLink5 link from every GPU "
    "to every chip; 'Network Fabrics'), 'NVIDIA NDR (400 Gbps) InfiniBand' compute fabric "
    "('Abstract'), rail-optimised, and 'the fabric should be designed to support the full "
    "SU, including leaf switches and leaf-spine cables' ('Network Fabrics'); DGX GB200 User "
    "Guide ('Hardware'): 18 compute trays of 4 GPUs per rack, each tray with '4x NVIDIA "
    "ConnectX-7 single port 400G OSFP NIC' for the cluster network (one NIC per GPU). "
    "Switches: 64-port NDR QM9700 leaves and spines as in the DGX H100 SuperPOD RA "
    "(RA-11333-001). DERIVED, not quoted (the stored RA pages stop before the compute "
    "fabric's switch counts): a non-blocking leaf has 32 ports down, so one SU's 576 NICs "
    "need 18 leaves; leaf t takes compute tray t's 4 NICs of each of the SU's 8 racks "
    "(rails_per_leaf=4); spines by this module's sizing rule (16 for one SU, 32 for two or "
    "three SUs); a two-tier fabric of 64-port switches ends at 3 SUs (24 racks)"
)

PRESETS: dict[str, dict[str, Any]] = {
    "dgx-h100-superpod-4": {
        "func": "hierarchical",
        "params": {"nodes": 4},
        "source": _SUPERPOD_SOURCE,
        "description": (
            "4 DGX H100 (32 GPUs) on a rail-optimised NDR fabric cabled as one SuperPOD "
            "scalable unit (8 rail leaves, 4 spines)"
        ),
    },
    "dgx-h100-superpod-su": {
        "func": "hierarchical",
        "params": {"nodes": 31},
        "source": _SUPERPOD_SOURCE,
        "description": (
            "one DGX SuperPOD scalable unit: 31 DGX H100 (248 GPUs; the 32nd leaf port "
            "serves UFM), 8 rail leaves, 4 spines"
        ),
    },
    "dgx-b200-superpod-2": {
        "func": "hierarchical",
        "params": {
            "nodes": 2,
            "switches": 2,
            "scale_up_link": "nvlink5",
        },
        "source": _B200_SOURCE,
        "description": "2 DGX B200 (16 GPUs), one NDR NIC per GPU on a rail-optimised fabric",
    },
    "gb200-superpod": {
        "func": "hierarchical",
        "params": {
            "nodes": 8,
            "gpus": 72,
            "switches": 18,
            "scale_up_link": "nvlink5",
            "leaf_radix": 64,
            "rails_per_leaf": 4,
            "merge_switches": True,
        },
        "source": _GB200_RA_SOURCE,
        "description": (
            "one DGX SuperPOD GB200 scalable unit: 8 NVL72 racks (576 GPUs), one NDR NIC per "
            "GPU, 18 leaves (a compute tray's 4 NICs per leaf) and 16 spines of 64 ports "
            "(nodes= for 1-24 racks; 18 NVLink Switch chips per rack merged into one plane)"
        ),
    },
    "nvl72-superpod-2": {
        "func": "hierarchical",
        "params": {
            "nodes": 2,
            "gpus": 72,
            "switches": 18,
            "scale_up_link": "nvlink5",
            "leaf_radix": 144,
            "merge_switches": True,
        },
        "source": _NVL72_IB_SOURCE,
        "description": (
            "2 GB200 NVL72 racks (144 GPUs), one NDR NIC per GPU on a non-blocking "
            "rail-optimised fabric (override nodes= for more racks, up to 72); each rack's 18 "
            "symmetric NVLink Switch chips merged into one plane (merge_switches=false for 18)"
        ),
    },
}


def fabric_size(nodes: int, gpus: int, leaf_radix: int, rails_per_leaf: int = 1) -> dict[str, int]:
    """Switch counts of the scale-out fabric of :func:`hierarchical` (see module docstring).

    Returns
    -------
    dict
        ``nodes_per_leaf`` (nodes per group: ``(leaf_radix/2) / rails_per_leaf``),
        ``groups``, ``leaves``, ``spines``, ``links_per_spine_edge`` (parallel leaf-spine
        links; 0 without spines) and ``spine_leaf_links`` (physical leaf-spine links in all).

    Raises
    ------
    ConfigError
        ``leaf_radix`` odd or ``< 2``, ``rails_per_leaf`` not dividing ``gpus`` or above
        ``leaf_radix/2``, or more leaves than a two-tier fabric can join.

    Examples
    --------
    >>> fabric_size(127, 8, 64)["spines"]  # 4 SuperPOD scalable units
    16
    >>> fabric_size(20, 72, 64, 4)["leaves"]  # 20 GB200 racks: 3 SUs of 18 leaves
    54
    """
    nodes = require_int("nodes", nodes, min=1)
    gpus = require_int("gpus", gpus, min=1)
    leaf_radix = require_int("leaf_radix", leaf_radix, min=2, even=True)
    rails_per_leaf = _require_rails(rails_per_leaf, gpus, leaf_radix)
    return _fabric_size(nodes, gpus, leaf_radix, rails_per_leaf)


def _require_rails(rails_per_leaf: Any, gpus: int, leaf_radix: int) -> int:
    rails = require_int("rails_per_leaf", rails_per_leaf, min=1, max=leaf_radix // 2)
    if gpus % rails:
        raise ConfigError(f"rails_per_leaf: must divide gpus={gpus}, got {rails}")
    return rails


def _fabric_size(nodes: int, gpus: int, leaf_radix: int, rails: int = 1) -> dict[str, int]:
    down = leaf_radix // 2
    per_group = down // rails
    groups = math.ceil(nodes / per_group)
    leaves = groups * (gpus // rails)
    if leaves > leaf_radix:
        most = (leaf_radix // (gpus // rails)) * per_group
        raise ConfigError(
            f"nodes: a two-tier rail-optimised fabric of leaf_radix={leaf_radix} holds at "
            f"most {most} nodes of {gpus} GPUs, got {nodes}"
        )
    if leaves == 1:
        spines, per_edge = 0, 0
    else:
        need = math.ceil(leaves * down / leaf_radix)
        spines = next(d for d in range(need, down + 1) if down % d == 0)
        per_edge = down // spines
    return {
        "nodes_per_leaf": per_group,
        "groups": groups,
        "leaves": leaves,
        "spines": spines,
        "links_per_spine_edge": per_edge,
        "spine_leaf_links": leaves * spines * per_edge,
    }


def hierarchical(
    nodes: int,
    *,
    gpus: int = 8,
    switches: int = 4,
    links_per_gpu: int = 18,
    scale_up: LinkSpec = SCALE_UP,
    nvswitch_latency: float | None = None,
    nvswitch_reduction: bool = True,
    merge_switches: bool = False,
    nic: LinkSpec = NIC,
    leaf_radix: int = 64,
    rails_per_leaf: int = 1,
    fabric_switch_latency: float | None = None,
    fabric_reduction: bool = False,
) -> nx.Graph:
    """NVSwitch scale-up nodes joined by a rail-optimised two-tier leaf-spine fabric.

    Rank order: chip ``node * gpus + local_rank``. Chips carry ``node``, ``local_rank``,
    ``rail`` (= ``local_rank``) and ``nic_bandwidth``; their ``injection_bandwidth`` is the
    scale-up (NVLink) aggregate plus the NIC, ``links_per_gpu * scale_up_bandwidth +
    nic_bandwidth``: on a DGX H100 the NIC (ConnectX-7) hangs off the GPU's PCIe switch, so
    its traffic does not share the NVLink budget (a GPU drives both at once). Switches follow: the NVSwitch chips node by node
    (``role="nvswitch"``, ``level=0``, ``node``, ``index``), the leaves group by group and
    rail by rail (``role="leaf"``, ``level=0``, ``group``, ``rail``: its first rail, and
    ``rails`` if it serves more than one), then the spines (``role="spine"``, ``level=1``,
    ``index``), then with ``rails_per_leaf > 1`` one NIC per GPU (``role="nic"``, ``chip``).
    Edges carry ``role``: ``"scale_up"``, ``"nic"`` (NIC to leaf), ``"host"`` (GPU to its
    NIC node) or ``"fabric"`` (leaf-spine). Fabric sizing: see the module docstring and
    :func:`fabric_size`.

    Parameters
    ----------
    nodes : int
        Scale-up domains (e.g. DGX systems), ``>= 1``.
    gpus, switches, links_per_gpu : int
        GPUs, NVSwitch chips and NVLink links per GPU of one node, as in
        :func:`topologies.nvswitch.nvswitch`.
    scale_up : LinkSpec
        The NVLinks: link type (``nvlink``, ``nvlink5``), bytes/s per direction of ONE
        link and latency (default :data:`SCALE_UP`: the ``nvlink`` type's values). In spec
        strings ``scale_up_link``, ``scale_up_bandwidth``, ``scale_up_latency``.
    nvswitch_latency : float, optional
        NVSwitch traversal latency, seconds (default: the scale-up link type's).
    nvswitch_reduction : bool
        NVSwitch in-network reduction (NVLink SHARP).
    merge_switches : bool
        Every node's ``switches`` NVSwitch chips as one switch with all the node's NVLinks
        and ``switches`` times one chip's reduction bandwidth
        (:func:`topologies.nvswitch.merged_switch`): the same times on the flow and
        analytical backends when the chips are symmetric (``links_per_gpu`` a multiple of
        ``switches``; ConfigError otherwise), ``switches`` times fewer transfers. The node
        then has one NVSwitch (node ids shift accordingly).
    nic : LinkSpec
        The NICs and the leaf-spine links: link type (``ib``, ``ethernet``), bytes/s per
        direction of one NIC and of one leaf-spine link, latency (default :data:`NIC`: the
        ``ib`` type's, 50 GB/s = 400 Gb/s NDR). In spec strings ``nic_link``,
        ``nic_bandwidth``, ``nic_latency``.
    leaf_radix : int
        Ports per leaf and per spine switch, even, ``>= 2`` (64 for the NDR QM9700).
    rails_per_leaf : int
        Rails one leaf serves (dividing ``gpus``, at most ``leaf_radix/2``): leaf ``t`` of a
        group takes local ranks ``t*rails_per_leaf ..`` of every node of the group, and a
        group has ``(leaf_radix/2) / rails_per_leaf`` nodes. 1 (default) is the DGX H100
        SuperPOD's leaf per rail; 4 puts a GB200 compute tray's four NICs on one leaf, a
        group of 8 racks (see :data:`PRESETS` ``gb200-superpod``). With more than one rail
        per leaf, GPUs of one node share leaves, so every NIC is a node of its own
        (``role="nic"`` switch, no latency, linked to its GPU by an edge of ``role="host"``
        at the NIC's rate and no latency): a GPU's route to another GPU of its node through
        a leaf is then 4 links, never a tie with the 2-link NVLink route.
    fabric_switch_latency : float, optional
        Leaf/spine traversal latency, seconds (default: the NIC link type's).
    fabric_reduction : bool
        In-network reduction on leaves and spines (InfiniBand SHARP; off by default).

    Returns
    -------
    networkx.Graph
        ``nodes*gpus`` chips; ``nodes*switches`` NVSwitch chips plus the fabric of
        :func:`fabric_size` (and one NIC node per GPU if ``rails_per_leaf > 1``). Chips
        never forward traffic, so GPUs of different leaves in different nodes meet at a
        spine (no NVLink detour, "PXN"). Chip-to-chip diameter: 2 links (GPU-NVSwitch-GPU,
        or GPU-leaf-GPU on one rail of a group) if ``nodes == 1`` or there is a single
        leaf, else 4 (GPU-leaf-spine-leaf-GPU); with NIC nodes, 2 inside a node, 4 through
        a leaf (GPU-NIC-leaf-NIC-GPU) and 6 through a spine.
        ``bisection_bandwidth`` with ``m = floor(N/2)`` (``N`` chips), ``r = m mod gpus``:
        ``m * nic_bandwidth + min(r, gpus - r) * links_per_gpu * scale_up_bandwidth``.
        Upper bound: the first ``m`` ranks on one side with every leaf and spine on the
        other, the NVSwitches of a split node on its larger part. Lower bound: the NICs of
        ``m`` chips can send to ``m`` chips of the other side at full rate through the
        non-blocking fabric (spread evenly over the spines), while inside every split node
        the smaller part streams its NVLinks to the larger part; and the split parts of
        nodes add up to at least ``min(r, gpus - r)`` GPUs. ``bisection_links`` counts the
        physical links of that cut (NIC and NVLink links).

    Raises
    ------
    ConfigError
        A parameter out of range, or a fabric larger than two tiers allow.

    Examples
    --------
    >>> G = hierarchical(4)
    >>> G.graph["chips"], G.nodes[9]["node"], G.nodes[9]["local_rank"]
    (32, 1, 1)
    >>> sorted({d["role"] for _, d in G.nodes(data=True) if d["kind"] == "switch"})
    ['leaf', 'nvswitch', 'spine']
    """
    for name, spec in (("scale_up", scale_up), ("nic", nic)):
        if not isinstance(spec, LinkSpec):
            raise ConfigError(f"{name}: must be a topologies.graph.LinkSpec, got {spec!r}")
    params = _validated(
        {
            "nodes": nodes,
            "gpus": gpus,
            "switches": switches,
            "links_per_gpu": links_per_gpu,
            "scale_up_link": scale_up.link,
            "scale_up_bandwidth": scale_up.bandwidth,
            "scale_up_latency": scale_up.latency,
            "nvswitch_latency": nvswitch_latency,
            "nvswitch_reduction": nvswitch_reduction,
            "merge_switches": merge_switches,
            "nic_link": nic.link,
            "nic_bandwidth": nic.bandwidth,
            "nic_latency": nic.latency,
            "leaf_radix": leaf_radix,
            "rails_per_leaf": rails_per_leaf,
            "fabric_switch_latency": fabric_switch_latency,
            "fabric_reduction": fabric_reduction,
        }
    )
    size = _fabric_size(
        params["nodes"], params["gpus"], params["leaf_radix"], params["rails_per_leaf"]
    )
    nic = LinkSpec(params["nic_link"], params["nic_bandwidth"], params["nic_latency"])
    scale_up = LinkSpec(
        params["scale_up_link"], params["scale_up_bandwidth"], params["scale_up_latency"]
    )
    G = nx.Graph()
    _add_nodes(G, params, scale_up, nic.link_bandwidth())
    _add_fabric(G, params, size, nic)
    n_chips = params["nodes"] * params["gpus"]
    m = n_chips // 2
    split_gpus = min(m % params["gpus"], params["gpus"] - m % params["gpus"])
    su_links = split_gpus * params["links_per_gpu"]
    G.graph["bisection_bandwidth"] = m * nic.link_bandwidth() + su_links * scale_up.link_bandwidth()
    G.graph["bisection_links"] = m + su_links
    return finish(G, "hierarchical", params)


def _validated(raw: dict[str, Any]) -> dict[str, Any]:
    """Check every parameter of :func:`hierarchical` (one ConfigError naming the first bad
    one); return them as ``G.graph["params"]`` records them."""
    p = dict(raw)
    p["nodes"] = require_int("nodes", p["nodes"], min=1)
    p["gpus"] = require_int("gpus", p["gpus"], min=1)
    check_chips("nodes, gpus", p["nodes"] * p["gpus"], f"nodes*gpus = {p['nodes'] * p['gpus']}")
    p["switches"] = require_int("switches", p["switches"], min=1)
    p["links_per_gpu"] = require_int("links_per_gpu", p["links_per_gpu"], min=p["switches"])
    checks = {"link": require_link, "bw": opt_bandwidth, "time": opt_time, "bool": require_bool}
    for name, kind in (
        ("scale_up_link", "link"),
        ("scale_up_bandwidth", "bw"),
        ("scale_up_latency", "time"),
        ("nvswitch_latency", "time"),
        ("nvswitch_reduction", "bool"),
        ("merge_switches", "bool"),
        ("nic_link", "link"),
        ("nic_bandwidth", "bw"),
        ("nic_latency", "time"),
    ):
        p[name] = checks[kind](name, p[name])
    p["leaf_radix"] = require_int("leaf_radix", p["leaf_radix"], min=2, even=True)
    p["rails_per_leaf"] = _require_rails(p["rails_per_leaf"], p["gpus"], p["leaf_radix"])
    p["fabric_switch_latency"] = opt_time("fabric_switch_latency", p["fabric_switch_latency"])
    p["fabric_reduction"] = require_bool("fabric_reduction", p["fabric_reduction"])
    return p


def _switches_per_node(p: dict[str, Any]) -> int:
    """NVSwitch nodes of the graph per scale-up node (1 when merged)."""
    return 1 if p["merge_switches"] else p["switches"]


def _add_nodes(G: nx.Graph, p: dict[str, Any], scale_up: LinkSpec, nic_bw: float) -> None:
    """Add the scale-up domains (GPUs and NVSwitch chips) node by node; a GPU's injection
    budget is its NVLinks plus its NIC (``nic_bw``)."""
    nodes, gpus, switches = p["nodes"], p["gpus"], p["switches"]
    nvs0 = nodes * gpus
    split = link_split(p["links_per_gpu"], switches)
    per = _switches_per_node(p)
    for node in range(nodes):
        first = node * gpus
        add_domain(
            G,
            list(range(first, first + gpus)),
            [nvs0 + node * per + j for j in range(switches)],
            split,
            link=scale_up,
            switch_latency=p["nvswitch_latency"],
            reduction=p["nvswitch_reduction"],
            x0=node * (gpus + 1.0),
            chip_attrs=[
                {"node": node, "local_rank": r, "rail": r, "nic_bandwidth": nic_bw}
                for r in range(gpus)
            ],
            switch_attrs={"node": node},
            edge_attrs={"role": "scale_up"},
            merge=p["merge_switches"],
        )
        for c in range(first, first + gpus):  # the NIC sits on PCIe, beside the NVLinks
            G.nodes[c]["injection_bandwidth"] += nic_bw


def _add_fabric(G: nx.Graph, p: dict[str, Any], size: dict[str, int], nic: LinkSpec) -> None:
    """Add the leaves and the spines, link every GPU's NIC to the leaf of its rail and
    group, and every leaf to every spine."""
    nodes, gpus, rails = p["nodes"], p["gpus"], p["rails_per_leaf"]
    per_group = gpus // rails
    leaf0 = nodes * gpus + nodes * _switches_per_node(p)
    spine0 = leaf0 + size["leaves"]
    latency = p["fabric_switch_latency"]
    switch = {
        "latency": link_type(nic.link).switch_latency if latency is None else latency,
        "reduction": p["fabric_reduction"],
    }
    width = max(nodes * (gpus + 1.0) - 1.0, 1.0)
    for i in range(size["leaves"]):
        group, t = divmod(i, per_group)
        x = (i + 0.5) * width / size["leaves"]
        extra = {"rails": rails} if rails > 1 else {}
        add_switch(G, leaf0 + i, (x, 2.0), **switch, role="leaf", level=0, group=group,
                   rail=t * rails, **extra)  # fmt: skip
    for j in range(size["spines"]):
        x = (j + 0.5) * width / size["spines"]
        add_switch(G, spine0 + j, (x, 3.0), **switch, role="spine", level=1, index=j)
    nic0 = spine0 + size["spines"]
    for c in range(nodes * gpus):
        node, rail = divmod(c, gpus)
        leaf = leaf0 + (node // size["nodes_per_leaf"]) * per_group + rail // rails
        if rails == 1:
            nic.add(G, c, leaf, role="nic")
            continue
        x, _ = G.nodes[c]["pos"]
        add_switch(G, nic0 + c, (x, 1.5), latency=0.0, role="nic", level=0, chip=c)
        host = LinkSpec(nic.link, nic.link_bandwidth(), 0.0)
        host.add(G, c, nic0 + c, role="host")
        nic.add(G, nic0 + c, leaf, role="nic")
    for i in range(size["leaves"]):
        for j in range(size["spines"]):
            nic.add(G, leaf0 + i, spine0 + j, count=size["links_per_spine_edge"], role="fabric")
