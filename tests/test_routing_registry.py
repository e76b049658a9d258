"""The routing registry: names, the families each router declares, and the spray flag.

Each declaration is checked against what the router does: a router applies exactly to its
declared families; the automatic choice on a grid gives minimal routes; a router that
declares ``sprays`` spreads flows over several equal-cost (minimal) routes, one that does
not keeps every flow of a pair on one route; the collectives runner stripes by the flag.
"""

from __future__ import annotations

import networkx as nx
import pytest

from collectives import run_collective
from netsim.core.engine.routing import (
    AUTO_DEFAULT,
    ROUTERS,
    ROUTINGS,
    PortTable,
    RoutingInfo,
    auto_routing,
    make_router,
    register_routing,
)
from netsim.core.errors import ConfigError
from topologies.dragonfly import dragonfly
from topologies.torus import mesh, torus
from topologies.trees import fat_tree
from topologies.wafer import wafer

GRAPHS = {
    "torus": lambda: torus((4, 4)),
    "mesh": lambda: mesh((3, 3)),
    "wafer": lambda: wafer((2, 2)),
    "dragonfly": lambda: dragonfly(2, 1, 1),
    "fat_tree": lambda: fat_tree(4),
}


def _chips(G: nx.Graph) -> list[int]:
    return sorted(n for n, kind in G.nodes(data="kind") if kind != "switch")


def _router(G: nx.Graph, routing: str):
    return make_router(G, PortTable(G), routing, seed=1, backlog=lambda port: 0.0)


def test_unknown_routing_is_one_line_listing_every_name():
    G = torus((4,))
    with pytest.raises(ConfigError) as err:
        _router(G, "magic")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == f"routing: must be one of {', '.join(ROUTINGS)}, got 'magic'"
    assert set(ROUTINGS) == {"auto", *ROUTERS}


@pytest.mark.parametrize("name", list(ROUTERS))
def test_router_applies_to_its_declared_families_only(name):
    info = ROUTERS[name]
    for family, graph in GRAPHS.items():
        G = graph()
        assert G.graph["family"] == family
        if info.families and family not in info.families:
            with pytest.raises(ConfigError, match=f"routing: '{name}' applies to .*{family}"):
                _router(G, name)
        elif name.startswith("dor") and family not in ("torus", "mesh", "wafer"):
            continue  # dimension order needs node coordinates (checked by the router)
        else:
            r = _router(G, name)
            assert (r.name, r.sprays) == (name, info.sprays)


@pytest.mark.parametrize("family", list(GRAPHS))
def test_auto_picks_the_declared_router_and_it_routes_minimally(family):
    declared = [r.name for r in ROUTERS.values() if family in r.auto_for]
    assert len(declared) <= 1
    expected = declared[0] if declared else AUTO_DEFAULT
    assert auto_routing(family) == expected
    G = GRAPHS[family]()
    r = _router(G, "auto")
    assert r.name == expected
    chips = _chips(G)
    for s in chips[:4]:
        lengths = nx.single_source_shortest_path_length(G, s)
        for d in chips:
            if d != s:
                assert len(r.path_nodes(s, d)) - 1 == lengths[d]


@pytest.mark.parametrize("name", list(ROUTERS))
def test_spray_flag_matches_the_routes_a_router_gives(name):
    """A spraying router gives several minimal routes over 64 flow labels between two far
    chips; any other minimal router gives one. (Valiant and UGAL are non-minimal by design
    and declare no spraying: only the flag is checked for them.)"""
    info = ROUTERS[name]
    family = "dragonfly" if "dragonfly" in info.families else "torus"
    G = GRAPHS[family]()
    r = _router(G, name)
    chips = _chips(G)
    s, d = chips[0], chips[len(chips) // 2 + 1]
    routes = {tuple(r.path_nodes(s, d, flow)) for flow in range(64)}
    hops = nx.shortest_path_length(G, s, d)
    if info.sprays:
        assert len(routes) > 1 and all(len(p) - 1 == hops for p in routes)
    elif name in ("valiant", "ugal"):
        assert not info.sprays
    else:
        assert len(routes) == 1


def test_runner_stripes_by_the_declared_flag(monkeypatch):
    """The same router registered without the spray flag: the runner then sends each message
    on one route, so ``multipath`` changes nothing, as it does not for ``dor``; with the flag
    a ring step on DGX H100 stripes over the four NVSwitches and runs faster."""
    single = RoutingInfo("shortest-single", ROUTERS["shortest"].build, sprays=False)
    monkeypatch.setitem(ROUTERS, single.name, single)

    def t(routing, multipath):
        r = run_collective("dgx-h100", "allreduce", "ring", "4MiB", routing=routing,
                           multipath=multipath)  # fmt: skip
        return r["time_s"]

    assert t("shortest-single", True) == t("shortest-single", False) == t("shortest", False)
    assert t("shortest", True) < 0.5 * t("shortest", False)


def test_register_refuses_a_taken_name_or_automatic_family():
    with pytest.raises(ConfigError, match="'dor' is already registered"):
        register_routing(RoutingInfo("dor", ROUTERS["dor"].build))
    with pytest.raises(ConfigError, match="auto_for 'torus', already 'dor'"):
        register_routing(RoutingInfo("other", ROUTERS["dor"].build, auto_for=("torus",)))
    assert "other" not in ROUTERS
