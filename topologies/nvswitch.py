"""NVLink/NVSwitch scale-up domains: GPUs whose links all land on a set of switch chips.

A scale-up domain (one DGX/HGX baseboard, or one NVL72 rack) has ``G`` GPUs and ``S``
NVSwitch chips. Each GPU has ``L`` NVLink links, spread over the ``S`` switches as evenly as
possible (:func:`link_split`); the parallel links between one GPU and one switch are one
edge of the graph with ``count`` = the number of links and ``bandwidth`` = ``count`` times
one link's. There are no GPU-to-GPU links: every path between two GPUs is
GPU -> NVSwitch -> GPU (2 links).

References
----------
.. [1] NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022): 18 fourth-generation
   NVLink links per H100, 900 GB/s total bandwidth (both directions summed); third-generation
   NVSwitch with NVLink SHARP in-network reductions.
.. [2] A. Ishii and R. Wells, "The NVLink-Network Switch: NVIDIA's Switch Chip for High
   Communication-Bandwidth SuperPODs", Hot Chips 34 (2022): DGX H100 wires each GPU to its
   four NVSwitch chips with 5, 4, 4 and 5 NVLinks.
.. [3] NVIDIA GB200 NVL72 product page and DGX SuperPOD (GB200) reference architecture
   (2024): 72 Blackwell GPUs, nine NVLink Switch trays of two NVLink Switch chips each
   (18 chips), 18 fifth-generation NVLink links and 1.8 TB/s per GPU, 130 TB/s in total.
.. [4] NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 12 third-generation
   NVLink links per A100 (600 GB/s total), six NVSwitch chips on the HGX/DGX A100 board.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import networkx as nx

from netsim.core.errors import ConfigError
from netsim.core.linktypes import REDUCTION_ENGINES, link_type
from netsim.core.validate import require_float, require_int
from topologies.graph import LinkSpec, add_chip, add_switch, finish
from topologies.limits import check_chips
from topologies.options import opt_bandwidth, opt_time, require_bool, require_link

__all__ = ["PARAMETER_KINDS", "PRESETS", "add_domain", "link_split", "merged_switch", "nvswitch"]

#: Kind of every generator parameter (:data:`topologies.options.KINDS`): how the
#: registry converts a spec value for it.
PARAMETER_KINDS: dict[str, dict[str, str]] = {
    "nvswitch": {
        "gpus": "int",
        "switches": "int",
        "links_per_gpu": "int",
        "link": "str",
        "link_bandwidth": "bandwidth",
        "latency": "time",
        "switch_latency": "time",
        "reduction": "bool",
        "reduction_bandwidth": "bandwidth",
        "reduction_latency": "time",
        "merge_switches": "bool",
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "dgx-h100": {
        "func": "nvswitch",
        "params": {"gpus": 8, "switches": 4, "links_per_gpu": 18, "link": "nvlink"},
        "source": (
            "8 H100 GPUs with 18 NVLink4 links each (900 GB/s per GPU, both directions "
            "summed) and 4 third-generation NVSwitch chips with NVLink SHARP (NVIDIA H100 "
            "Tensor Core GPU Architecture whitepaper, 2022; NVIDIA DGX H100 User Guide); "
            "links per GPU to the four switches 5, 4, 4, 5 (Ishii & Wells, 'The NVLink-Network "
            "Switch', Hot Chips 34, 2022)"
        ),
        "description": "NVIDIA DGX H100 / HGX H100 8-GPU board: 8 GPUs, 4 NVSwitch chips",
    },
    "dgx-a100": {
        "func": "nvswitch",
        "params": {
            "gpus": 8,
            "switches": 6,
            "links_per_gpu": 12,
            "link": "nvlink",
            "reduction": False,
        },
        "source": (
            "8 A100 GPUs with 12 NVLink3 links each (600 GB/s per GPU both directions summed, "
            "i.e. 25 GB/s per link per direction like NVLink4) and 6 second-generation "
            "NVSwitch chips, 2 links from every GPU to every switch (NVIDIA A100 Tensor Core "
            "GPU Architecture whitepaper, 2020; NVIDIA DGX A100 User Guide). Second-generation "
            "NVSwitch has no in-network reduction, hence reduction=false."
        ),
        "description": "NVIDIA DGX A100 / HGX A100 8-GPU board: 8 GPUs, 6 NVSwitch chips",
    },
    "nvl72": {
        "func": "nvswitch",
        "params": {"gpus": 72, "switches": 18, "links_per_gpu": 18, "link": "nvlink5"},
        "source": (
            "GB200 NVL72: 72 Blackwell GPUs, 9 NVLink Switch trays x 2 NVLink Switch chips = "
            "18 switch chips, 18 NVLink5 links per GPU (1.8 TB/s per GPU both directions "
            "summed; 130 TB/s for the rack), one link from every GPU to every switch chip "
            "(NVIDIA GB200 NVL72 product page; NVIDIA DGX SuperPOD GB200 reference "
            "architecture, 2024)"
        ),
        "description": "NVIDIA GB200 NVL72 rack: 72 GPUs, 18 NVLink Switch chips",
    },
    "dgx-b200": {
        "func": "nvswitch",
        "params": {"gpus": 8, "switches": 2, "links_per_gpu": 18, "link": "nvlink5"},
        "source": (
            "8 B200 GPUs with 18 NVLink5 links each (1.8 TB/s per GPU both directions summed) "
            "and '2 x 5th generation NVLink switches that provide 14.4 TB/s aggregate "
            "bandwidth' (NVIDIA DGX B200 User Guide, 'Introduction to NVIDIA DGX B200 "
            "Systems', docs.nvidia.com/dgx/dgxb200-user-guide); 9 links from every GPU to "
            "each switch chip (the even split of 18 links over 2 chips); the switch chips are "
            "the NVL72's NVLink Switch generation, with NVLink SHARP"
        ),
        "description": "NVIDIA DGX B200 / HGX B200 8-GPU board: 8 GPUs, 2 NVLink Switch chips",
    },
}


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- structure


def link_split(links: int, switches: int) -> list[int]:
    """Spread ``links`` links of one GPU over ``switches`` switches as evenly as possible.

    Every switch gets ``links // switches``; the ``links % switches`` extra links go to the
    switches at the two ends alternately (first, last, second, second-to-last, ...), which
    reproduces the DGX H100 wiring of 18 links over 4 NVSwitch chips as 5, 4, 4, 5 [2]_.

    Parameters
    ----------
    links : int
        Links per GPU, ``>= switches``.
    switches : int
        Number of switch chips, ``>= 1``.

    Returns
    -------
    list of int
        Links from the GPU to switch ``0..switches-1``; they sum to ``links``.

    Raises
    ------
    ConfigError
        If ``switches < 1`` or ``links < switches``.

    Examples
    --------
    >>> link_split(18, 4)
    [5, 4, 4, 5]
    >>> link_split(12, 6)
    [2, 2, 2, 2, 2, 2]
    """
    switches = require_int("switches", switches, min=1)
    links = require_int("links_per_gpu", links, min=switches)
    return _link_split(links, switches)


def _link_split(links: int, switches: int) -> list[int]:
    base, extra = divmod(links, switches)
    split = [base] * switches
    order = [i // 2 if i % 2 == 0 else switches - 1 - i // 2 for i in range(switches)]
    for s in order[:extra]:
        split[s] += 1
    return split


def merged_switch(
    switch_ids: list[int],
    split: list[int],
    link: LinkSpec,
    switch_attrs: dict[str, Any] | None,
    reduction: bool = True,
) -> tuple[list[int], list[int], dict[str, Any]]:
    """One switch standing for ``len(switch_ids)`` symmetric switch chips (a merged *plane*).

    Every GPU's ``S`` edges of ``k`` links each become one edge of ``S * k`` links, and a
    reducing switch gets ``S`` times the reduction bandwidth of one chip (its generation's,
    :data:`netsim.core.linktypes.REDUCTION_ENGINES`, or ``switch_attrs``'), with the same
    latency; ``merged`` records ``S``. When every GPU has the same number of links to every
    chip, a message striped over the ``S`` equal-cost routes in proportion to their
    bandwidth puts ``1/S`` of its bytes on each chip, and NVLS stripes a piece the same
    way: every chip then carries and reduces the same share, so fair sharing (flow model),
    bottleneck bounds (analytical model) and a reduction engine fed ``1/S`` of the bytes at
    ``1/S`` of the rate give the same times as the merged switch, up to the rounding of
    the stripes' byte counts (``tests/test_topo_merge.py`` checks this on small systems).
    The packet model serialises packets on one port of ``S`` times the rate instead of
    ``S`` ports in parallel: the same for large messages, lower per-packet latency.

    Returns
    -------
    tuple
        ``([switch_ids[0]], [sum(split)], attrs)``.

    Raises
    ------
    ConfigError
        The split is uneven (the chips are not symmetric).
    """
    if len(set(split)) != 1:
        raise ConfigError(
            "merge_switches: needs the same number of links from every GPU to every switch "
            f"(symmetric switch chips; links_per_gpu a multiple of switches), got {split} "
            f"links per switch ({sum(split)} over {len(split)})"
        )
    attrs = dict(switch_attrs or {})
    engine = REDUCTION_ENGINES.get(str(link.link))
    bw = attrs.get("reduction_bandwidth", engine.bandwidth if engine else None)
    if reduction and bw is not None:
        attrs["reduction_bandwidth"] = len(switch_ids) * float(bw)
        attrs.setdefault("reduction_latency", engine.latency if engine else 0.0)
    attrs["merged"] = len(switch_ids)
    return [switch_ids[0]], [sum(split)], attrs


def add_domain(
    G: nx.Graph,
    chips: list[int],
    switch_ids: list[int],
    split: list[int],
    *,
    link: LinkSpec,
    switch_latency: float | None,
    reduction: bool,
    x0: float = 0.0,
    chip_attrs: Iterable[dict[str, Any]] | None = None,
    switch_attrs: dict[str, Any] | None = None,
    edge_attrs: dict[str, Any] | None = None,
    merge: bool = False,
) -> None:
    """Add one scale-up domain: ``chips`` wired to ``switch_ids`` with ``split`` links each.

    Chips get ``injection_bandwidth`` = links per GPU times the bandwidth of one ``link``;
    switches traverse in ``switch_latency`` (default: the link type's). With ``merge`` the
    switch chips become one switch (``switch_ids[0]``; see :func:`merged_switch`). Used by
    :func:`nvswitch` and by :func:`topologies.hierarchical.hierarchical`.
    """
    if merge:
        switch_ids, split, switch_attrs = merged_switch(
            switch_ids, split, link, switch_attrs, reduction
        )
    lt = link_type(link.link)
    sw_lat = lt.switch_latency if switch_latency is None else float(switch_latency)
    injection = sum(split) * link.link_bandwidth()
    g = len(chips)
    attrs_list = list(chip_attrs) if chip_attrs is not None else [{} for _ in chips]
    for i, (c, extra) in enumerate(zip(chips, attrs_list, strict=True)):
        add_chip(G, c, (x0 + i, 0.0), injection_bandwidth=injection, **extra)
    nsw = len(switch_ids)
    for j, s in enumerate(switch_ids):
        x = x0 + (j + 0.5) * g / nsw - 0.5
        add_switch(
            G,
            s,
            (x, 1.0),
            latency=sw_lat,
            reduction=reduction,
            role="nvswitch",
            level=0,
            index=j,
            **(switch_attrs or {}),
        )
    for c in chips:
        for s, cnt in zip(switch_ids, split, strict=True):
            if cnt:
                link.add(G, c, s, count=cnt, **(edge_attrs or {}))


def nvswitch(
    gpus: int = 8,
    switches: int = 4,
    links_per_gpu: int = 18,
    *,
    link: str = "nvlink",
    link_bandwidth: float | None = None,
    latency: float | None = None,
    switch_latency: float | None = None,
    reduction: bool = True,
    reduction_bandwidth: float | None = None,
    reduction_latency: float | None = None,
    merge_switches: bool = False,
) -> nx.Graph:
    """NVLink/NVSwitch scale-up domain: every GPU linked to every NVSwitch chip.

    Chips ``0..gpus-1`` are the GPUs (rank = GPU index on the board); switches
    ``gpus..gpus+switches-1`` are the NVSwitch chips (``role="nvswitch"``, ``level=0``,
    ``index``). GPU ``g`` has ``link_split(links_per_gpu, switches)[j]`` links to switch
    ``j``, aggregated into one edge with that ``count``.

    Parameters
    ----------
    gpus : int
        GPUs (chips), ``>= 1``.
    switches : int
        NVSwitch chips, ``>= 1``.
    links_per_gpu : int
        NVLink links per GPU, ``>= switches`` (every GPU reaches every switch).
    link : str
        Link type of :mod:`netsim.core.linktypes` (``nvlink`` = NVLink3/4, ``nvlink5``).
    link_bandwidth : float, optional
        Bytes/s per direction of ONE link (default: the link type's, 25 GB/s for ``nvlink``).
    latency : float, optional
        Link latency, seconds (default: the link type's).
    switch_latency : float, optional
        NVSwitch traversal latency, seconds (default: the link type's ``switch_latency``).
    reduction : bool
        Whether the switches reduce in-network (NVLink SHARP of third-generation NVSwitch).
    reduction_bandwidth, reduction_latency : float, optional
        Operand bytes/s each switch's reduction engine consumes and seconds per reduction
        (default: the switch generation's, :data:`netsim.core.linktypes.REDUCTION_ENGINES`).
    merge_switches : bool
        Model the ``switches`` chips as one switch (node ``gpus``, attribute ``merged``)
        with all of every GPU's links and ``switches`` times one chip's reduction
        bandwidth: the same times on the flow and analytical backends when the chips are
        symmetric (``links_per_gpu`` a multiple of ``switches``), with ``switches`` times
        fewer transfers to simulate (:func:`merged_switch`). ConfigError otherwise.

    Returns
    -------
    networkx.Graph
        Following the contract of :mod:`topologies`. Chip ``injection_bandwidth`` is
        ``links_per_gpu * link_bandwidth`` (per direction). Graph ``bisection_bandwidth`` is
        ``floor(gpus/2) * links_per_gpu * link_bandwidth`` and ``bisection_links``
        ``floor(gpus/2) * links_per_gpu``: any balanced cut leaves each switch on one side,
        cutting the links of the GPUs on the other side, at least ``floor(gpus/2)`` GPUs'
        worth per switch; putting every switch on the larger side attains it (non-blocking
        switches).

    Raises
    ------
    ConfigError
        A parameter out of range (one line naming it).

    Examples
    --------
    >>> G = nvswitch()
    >>> G.graph["chips"], G.number_of_nodes() - G.graph["chips"]
    (8, 4)
    >>> [G.edges[0, s]["count"] for s in range(8, 12)]
    [5, 4, 4, 5]
    >>> G.nodes[0]["injection_bandwidth"]  # 18 x 25 GB/s per direction
    450000000000.0

    References
    ----------
    See the module docstring.
    """
    gpus = check_chips("gpus", require_int("gpus", gpus, min=1), str(gpus))
    switches = require_int("switches", switches, min=1)
    links_per_gpu = require_int("links_per_gpu", links_per_gpu, min=switches)
    link = require_link("link", link)
    link_bandwidth = opt_bandwidth("link_bandwidth", link_bandwidth)
    latency = opt_time("latency", latency)
    switch_latency = opt_time("switch_latency", switch_latency)
    reduction = require_bool("reduction", reduction)
    merge_switches = require_bool("merge_switches", merge_switches)
    engine = {}
    if reduction_bandwidth is not None:
        engine["reduction_bandwidth"] = require_float(
            "reduction_bandwidth", reduction_bandwidth, min=0.0, min_open=True
        )
    if reduction_latency is not None:
        engine["reduction_latency"] = require_float("reduction_latency", reduction_latency, min=0)
    params = {
        "gpus": gpus,
        "switches": switches,
        "links_per_gpu": links_per_gpu,
        "link": link,
        "link_bandwidth": link_bandwidth,
        "latency": latency,
        "switch_latency": switch_latency,
        "reduction": reduction,
        "reduction_bandwidth": reduction_bandwidth,
        "reduction_latency": reduction_latency,
        "merge_switches": merge_switches,
    }
    G = nx.Graph()
    add_domain(
        G,
        list(range(gpus)),
        list(range(gpus, gpus + switches)),
        _link_split(links_per_gpu, switches),
        link=LinkSpec(link, link_bandwidth, latency),
        switch_latency=switch_latency,
        reduction=reduction,
        switch_attrs=engine if reduction else None,
        merge=merge_switches,
    )
    bw = link_type(link).bandwidth if link_bandwidth is None else link_bandwidth
    half = math.floor(gpus / 2)
    G.graph["bisection_bandwidth"] = half * links_per_gpu * bw
    G.graph["bisection_links"] = half * links_per_gpu
    return finish(G, "nvswitch", params)
