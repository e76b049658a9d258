"""Per-call costs of DeepEP's MoE kernels, derived from their structure (no fitted constant).

DeepEP's low-latency kernels [1]_ (``csrc/kernels/legacy/internode_ll.cu``) do, per call:

*dispatch*
    1. **cast** (SMs): each token's BF16 hidden state is read, quantised to FP8 with one FP32
       scale per 128 channels and written to the send buffer, one token per SM, before any
       of its copies leaves;
    2. **send**: one RDMA write (IBGDA, issued by a warp) per (token, expert) copy of
       ``16 + hidden + 4 * hidden / 128`` bytes (an ``int4`` header with the source index,
       then the FP8 data and scales); intra-node peers are written over NVLink. These are
       the fabric transfers netsim simulates, the header included;
    3. **signal**: after its copies, one IBGDA atomic per (expert, destination rank)
       carries the count; the receiver spins on the count of every (expert, source rank);
    4. **unpack**: per (expert, source), a warp group copies the tokens from the RDMA
       buffer into the packed expert-major layout once their count arrived.

*combine*
    1. **send**: one RDMA write per (token, expert) of the BF16 expert output, then a flag
       per (expert, rank), as in dispatch steps 2-3;
    2. **reduce** (SMs): once every flag arrived, each token's ``top_k`` outputs are read
       and their weighted sum written, all on the SMs.

Each step becomes a named cost with a default from a published number (``model`` =
``deepep``, :data:`MECHANISMS`):

``nic_efficiency``  payload rate of a ConnectX-7 RDMA NIC over netsim's NDR payload rate, applied
                    to the bytes of every transfer crossing an InfiniBand/Ethernet link: 47 / 49.7 GB/s
                    (NVIDIA/nccl-tests issue 290: 46-48 GB/s per NDR NIC; the same constant as
                    NCCL's, :data:`collectives.calibration.LIBRARY_COSTS`, a calibration on
                    nccl-tests, held out here).
``nvlink_efficiency``  payload rate of the kernels' SM-driven NVLink copies over netsim's NVLink payload
                    rate, applied to every NVLink transfer: DeepEP's own H800 figure, "~160 GB/s NVLink
                    maximum bandwidth" (README since ebfe47e; issue 16: "the actual achievable bandwidth
                    peaks at approximately 160GB/s"; its intranode row: 153 / 158 GB/s), over
                    8 NVLink4 links x 25 GB/s x 256/272 (netsim's 16 B header per 256 B packet) =
                    188 GB/s: 0.85. A calibration on DeepEP's normal intranode kernels, held out from
                    every compared row; cross-check: 337 GB/s measured on H20 (18 links, issue 16)
                    is 0.80 of its 424 GB/s. Measured on NVLink4; NVLink5 takes it unvalidated.
``header_bytes``    16 B per dispatched copy (the ``int4`` header, ``internode_ll.cu``).
``cast``, ``unpack``, ``reduce``  HBM roofline of the bytes the SMs read and write (the chip's
                    HBM bandwidth, e.g. 3.35 TB/s on H100/H800 SXM).
``signal``          one more one-way latency of the slowest route of the EP group (the count
                    or flag is a separate RDMA atomic after the data; the topology's link
                    and switch latencies).
``msg_rate``        messages per second of one NIC: 330 million (NVIDIA ConnectX-7 product
                    specifications, "330-370 million messages per second"); the send phase
                    takes at least ``messages / msg_rate`` (never binding for 7 KB messages).
``launch``          0: DeepEP's published times are kernel durations (``bench_kineto``), which
                    exclude the host launch; give it to charge one.

DeepEP's normal kernels (``internode.cu``) take FP8 input (no cast), forward over NVLink and
reduce at the forwarder and at the source; ``normal`` charges ``signal`` to both, ``reduce``
(one partial sum per target node) to the combine and the NIC and NVLink efficiencies to the
transfers.

``none`` times the transfers alone (the hardware). A spec ``deepep:KEY=VALUE,...`` overrides
single mechanisms (times with units: ``signal=2us``; ``msg_rate=200e6``;
``nic_efficiency=0.9``; ``nvlink_efficiency=1``; ``hbm=2TB/s``).

References
----------
.. [1] DeepSeek-AI, DeepEP, https://github.com/deepseek-ai/DeepEP (commit dd758caf):
   ``csrc/kernels/legacy/internode_ll.cu``, ``internode.cu``, ``tests/legacy/test_low_latency.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from collectives.calibration import HARDWARE_ONLY, LIBRARY_COSTS, CostModel, cost_model
from netsim.core.errors import ConfigError
from netsim.core.linktypes import LINK_TYPES
from netsim.core.units import parse_bandwidth, parse_time

__all__ = [
    "KERNEL_MODELS",
    "KERNEL_MODES",
    "MECHANISMS",
    "NIC_LINKS",
    "NVLINK_LINKS",
    "CallShape",
    "KernelModel",
    "kernel_cost_model",
    "kernel_costs_record",
    "moe_kernel_model",
    "parse_moe_kernels",
]

#: Kernel cost models: ``deepep`` (the mechanisms of the module docstring) and ``none``.
KERNEL_MODELS = ("deepep", "none")
#: MoE modes that run DeepEP's kernels (``--dispatch``/``--combine``).
KERNEL_MODES = ("low-latency", "normal")
#: Link types that are RDMA NICs (their transfers pay ``nic_efficiency``).
NIC_LINKS = ("ib", "ethernet")
#: Link types that are NVLink (their transfers pay ``nvlink_efficiency``).
NVLINK_LINKS = ("nvlink", "nvlink5")
#: DeepEP's achievable NVLink rate on H800 (README "~160 GB/s NVLink maximum bandwidth").
DEEPEP_H800_NVLINK = 160e9
#: H800's NVLink: 8 NVLink4 links, each netsim's ``nvlink`` link type.
H800_NVLINKS = 8


def _nvlink_payload(links: int) -> float:
    """Payload bytes/s of ``links`` NVLink4 links in netsim (header per packet removed)."""
    lt = LINK_TYPES["nvlink"]
    return links * lt.bandwidth * lt.mtu / (lt.mtu + lt.header)


#: Default of every mechanism of ``deepep`` (``hbm`` and ``signal`` None: from the chip and
#: the topology).
MECHANISMS: dict[str, Any] = {
    "nic_efficiency": LIBRARY_COSTS["ib"].efficiency,
    "nvlink_efficiency": DEEPEP_H800_NVLINK / _nvlink_payload(H800_NVLINKS),
    "header_bytes": 16,
    "msg_rate": 330e6,
    "launch": 0.0,
    "signal": None,
    "hbm": None,
}


@dataclass(frozen=True)
class KernelModel:
    """Resolved kernel cost model (see the module docstring).

    Attributes
    ----------
    name : str
        ``deepep`` or ``none``.
    nic_efficiency, nvlink_efficiency, header_bytes, msg_rate, launch, signal, hbm :
        The mechanisms; ``signal`` None means the route latency, ``hbm`` the chip's HBM
        bandwidth (bytes/s).
    given : tuple[str, ...]
        Mechanisms set by the spec (the rest are defaults).
    """

    name: str
    nic_efficiency: float = 1.0
    nvlink_efficiency: float = 1.0
    header_bytes: int = 0
    msg_rate: float = 0.0
    launch: float = 0.0
    signal: float | None = None
    hbm: float | None = None
    given: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a mechanism outside its range (one line: ``moe_kernels.KEY: ...``)."""
        if not self.active:
            return
        rules = {
            "nic_efficiency": ("must be in (0, 1]", lambda x: 0.0 < x <= 1.0),
            "nvlink_efficiency": ("must be in (0, 1]", lambda x: 0.0 < x <= 1.0),
            "msg_rate": ("must be a finite number > 0", lambda x: 0.0 < x < math.inf),
            "header_bytes": ("must be an integer >= 0", lambda x: isinstance(x, int) and x >= 0),
        }
        for key, (rule, ok) in rules.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
                raise ConfigError(f"moe_kernels.{key}: {rule}, got {value!r}")

    @property
    def active(self) -> bool:
        """Whether any kernel cost is charged."""
        return self.name != "none"

    def record(self) -> dict[str, Any]:
        """The JSON keys naming the model that ran and its mechanisms."""
        if not self.active:
            return {"moe_kernels": "none"}
        return {
            "moe_kernels": self.name,
            "moe_kernel_mechanisms": {k: getattr(self, k) for k in MECHANISMS},
            "moe_kernel_overrides": list(self.given),
        }

    def costs(self, step: str, shape: CallShape, signal: float) -> dict[str, float]:
        """Serial costs (seconds) of one call at one rank around its fabric transfers.

        ``step`` is ``dispatch`` or ``combine`` of ``shape.mode`` (``low-latency`` or
        ``normal``); ``signal`` is the route latency used when :attr:`signal` is None.
        Keys: ``launch``, ``signal`` and the SM work of the step (``cast`` and ``unpack``
        of a low-latency dispatch, ``reduce`` of a combine), each an HBM roofline.
        """
        hbm = float(self.hbm or 0.0)
        t, w = shape.tokens, shape.wire_bytes
        act = shape.hidden * shape.act_bytes
        out = {"launch": self.launch, "signal": signal if self.signal is None else self.signal}
        if step == "dispatch" and shape.mode == "low-latency":
            out["cast"] = t * (act + w) / hbm  # read BF16, write FP8 + scales
            out["unpack"] = t * shape.top_k / shape.ep * 2 * w / hbm  # the last source's copies
        elif step == "combine":
            parts = shape.top_k if shape.mode == "low-latency" else min(shape.top_k, shape.nodes)
            out["reduce"] = t * (parts * w + act) / hbm  # read every partial, write the sum
        return out

    def message_floor(self, shape: CallShape) -> float:
        """Seconds one NIC needs to issue a call's messages: every copy and one count per
        expert, over :attr:`msg_rate` (an upper bound on the messages of one NIC). Zero for
        ``normal``, whose kernels send chunks of many tokens per RDMA write."""
        if shape.mode != "low-latency":
            return 0.0
        return (shape.tokens * shape.top_k + shape.experts) / self.msg_rate


@dataclass(frozen=True)
class CallShape:
    """What one rank's dispatch or combine call moves (inputs of :meth:`KernelModel.costs`).

    Attributes
    ----------
    mode : str
        ``low-latency`` or ``normal``.
    tokens, top_k, experts, hidden : int
        Tokens of the rank, experts per token, experts, hidden size.
    act_bytes : int
        Bytes per activation element (the cast's input and the combine's output).
    wire_bytes : int
        Bytes per token copy on the wire of this step.
    ep, nodes : int
        EP ranks and nodes of the group.
    """

    mode: str
    tokens: int
    top_k: int
    experts: int
    hidden: int
    act_bytes: int
    wire_bytes: int
    ep: int
    nodes: int


def parse_moe_kernels(spec: str | None, *, default: str, hbm: float) -> KernelModel:
    """Parse ``none``, ``deepep`` or ``deepep:KEY=VALUE,...`` (None: ``default``).

    Raises
    ------
    ConfigError
        Naming ``moe_kernels`` on an unknown model, key or a bad value.

    Examples
    --------
    >>> parse_moe_kernels("deepep:signal=2us", default="none", hbm=3.35e12).signal
    2e-06
    >>> parse_moe_kernels(None, default="none", hbm=3.35e12).active
    False
    """
    text = default if spec is None else spec
    if not isinstance(text, str):
        raise ConfigError(
            f"moe_kernels: expected 'deepep', 'none' or 'deepep:K=V,...', got {text!r}"
        )
    name, _, rest = text.strip().lower().partition(":")
    if name not in KERNEL_MODELS:
        raise ConfigError(
            f"moe_kernels: model must be one of {', '.join(KERNEL_MODELS)}, got {text!r}"
        )
    if name == "none":
        if rest:
            raise ConfigError(f"moe_kernels: 'none' takes no mechanisms, got {text!r}")
        return KernelModel("none")
    values = dict(MECHANISMS, hbm=hbm)
    given = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, val = item.partition("=")
        if not eq or key not in MECHANISMS:
            raise ConfigError(
                f"moe_kernels: mechanisms are {', '.join(MECHANISMS)} as KEY=VALUE, got {item!r}"
            )
        values[key] = _value(key, val)
        given.append(key)
    return KernelModel(name, **values, given=tuple(given))


def _value(key: str, val: str) -> Any:
    """One mechanism's value from its text (time, bandwidth, number)."""
    what = f"moe_kernels.{key}"
    if key in ("launch", "signal"):
        return parse_time(val, what)
    if key == "hbm":
        return parse_bandwidth(val, what)
    try:
        x = float(val)
    except ValueError:
        raise ConfigError(f"{what}: expected a number, got {val!r}") from None
    if key == "header_bytes" and x.is_integer():
        return int(x)
    return x  # ranges: KernelModel's


def kernel_cost_model(km: KernelModel, links: list[str]) -> CostModel:
    """The per-route costs of the kernels' transfers: the hardware alone (NVLink striped
    as the hardware does) with ``nic_efficiency`` on every NIC link type and
    ``nvlink_efficiency`` on every NVLink type."""
    base = cost_model("none", links)
    by_link = dict(base.by_link)
    for t in links:
        if t in NIC_LINKS:
            note = f"DeepEP RDMA: NIC payload rate (moe_kernels nic_efficiency {km.nic_efficiency})"
            by_link[t] = replace(HARDWARE_ONLY, link=t, efficiency=km.nic_efficiency, source=note)
        elif t in NVLINK_LINKS:
            eff = km.nvlink_efficiency
            note = f"DeepEP NVLink: SM copy payload rate (moe_kernels nvlink_efficiency {eff:.3f})"
            by_link[t] = replace(base.by_link[t], efficiency=eff, source=note)
    return CostModel("deepep", by_link, base.default)


def moe_kernel_model(spec: str | None, dispatch: str, chip: Any, *, active: bool) -> KernelModel:
    """The kernel model of a decode run: ``spec`` or, if None, ``deepep`` for the DeepEP
    dispatch modes (:data:`KERNEL_MODES`) and ``none`` otherwise; HBM from ``chip``.

    Raises
    ------
    ConfigError
        Naming ``moe_kernels`` on a bad spec, or a spec other than ``none`` for a run
        without MoE expert parallelism (``active`` false).
    """
    if not active:
        if spec not in (None, "none"):
            raise ConfigError(
                f"moe_kernels: applies to MoE layers with expert parallelism (ep > 1), got {spec!r}"
            )
        return KernelModel("none")
    default = "deepep" if dispatch in KERNEL_MODES else "none"
    return parse_moe_kernels(spec, default=default, hbm=chip.tier("hbm").bandwidth)


def kernel_costs_record(sites: Any) -> dict[str, Any]:
    """``moe_kernel_costs_s``: the per-call kernel costs of dispatch and combine (seconds by
    mechanism, plus the NIC's ``message_floor``) of the sites that paid them."""
    out = {}
    for s in sites:
        costs = s.run.stats.get("kernel_costs_s")
        if costs is not None and s.name not in out:
            out[s.name] = {**costs, "message_floor": s.run.stats["message_floor_s"]}
    return {"moe_kernel_costs_s": out} if out else {}
