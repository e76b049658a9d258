"""The declared backend seam: every backend implements every member of
:class:`netsim.core.backend.Backend`, the light path (``transfer``) gives the times of the
event path (``send``/``multicast``), and no layer above probes a backend for what it can do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netsim.core.analytical import AnalyticalNetwork
from netsim.core.backend import Backend
from netsim.core.engine import PacketNetwork
from netsim.core.flow import FlowNetwork
from topologies.torus import torus
from workloads.landing import LandingBackend

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = (PacketNetwork, FlowNetwork, AnalyticalNetwork)
#: The members the protocol declares (methods and attributes).
MEMBERS = (
    "env", "graph", "model", "router", "ports", "send", "multicast", "transfer", "call_at",
    "run", "link_utilisation", "stats",
)  # fmt: skip


def test_protocol_declares_the_members_used_above():
    declared = set(Backend.__annotations__) | {
        n for n, v in vars(Backend).items() if callable(v) and not n.startswith("_")
    }
    assert declared == set(MEMBERS)


@pytest.mark.parametrize("cls", BACKENDS)
def test_every_backend_implements_every_member(cls):
    net = cls(torus((4,)))
    assert isinstance(net, Backend)
    for name in MEMBERS:
        assert getattr(net, name) is not None, name
    wrapped = LandingBackend(net, 1e-6, [0, 1, 2, 3])
    assert isinstance(wrapped, Backend)


def _times(cls, light, wrap=False):
    """Arrival times of a burst of concurrent messages (unicasts that share links, one
    multicast, one zero-byte message), through ``transfer`` or through events."""
    net = cls(torus((4, 4)))
    be = LandingBackend(net, 2e-7, range(16)) if wrap else net
    msgs = [(0, (1,), 5000, 0), (0, (2,), 700, 1), (4, (1,), 3000, 0), (5, (6, 9, 10), 2000, 0),
            (3, (0,), 0, 0), (0, (1,), 100, 0)]  # fmt: skip
    out = {}

    def note(i):
        out[i] = be.env.now

    for i, (src, dsts, n, flow) in enumerate(msgs):
        if light:
            be.transfer(src, dsts, n, note, i, flow)
        elif len(dsts) == 1:
            be.send(src, dsts[0], n, flow=flow).callbacks.append(lambda _, i=i: note(i))
        else:
            be.multicast(src, dsts, n).callbacks.append(lambda _, i=i: note(i))
    be.run()
    return [out[i] for i in range(len(msgs))], be.stats()


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("cls", BACKENDS)
def test_transfer_arrives_when_send_does(cls, wrap):
    light, light_stats = _times(cls, True, wrap)
    event, event_stats = _times(cls, False, wrap)
    assert light == event  # the same floating-point numbers
    assert light_stats["bytes_delivered"] == event_stats["bytes_delivered"] > 0
    assert light_stats["bytes_delivered"] == light_stats["bytes_injected"]


#: Probing a backend for a capability instead of calling the declared seam.
_PROBES = re.compile(
    r"(hasattr|getattr)\(\s*(be|backend|net|network|ana_be|inner|self\.inner)\b"
    r"|inspect\.(signature|getfullargspec)\([^)]*(send|multicast|transfer|backend)"
)


def test_no_layer_probes_a_backend():
    found = []
    for top in ("collectives", "workloads", "netsim"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if _PROBES.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not found, "\n".join(found)
