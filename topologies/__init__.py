"""Topology generators: pure functions returning :class:`networkx.Graph` objects.

Attribute contract (every generator follows it)
-----------------------------------------------
Nodes are ints. Chips (endpoints that compute) are ``0..N-1`` in the family's documented
rank order; switches follow as ``N..N+S-1``.

Node attributes
    ``kind``: ``"chip"`` or ``"switch"``. ``pos``: ``(x, y)`` for drawing.
    Chips: ``injection_bandwidth`` (bytes/s the chip can inject; default the bandwidth of its
    network interface: the sum of its links in a direct network (torus, mesh, wafer: the
    DMA engines of a TPU drive all its ICI links at once), its link to the first switch
    otherwise); ``coord`` (tuple) where the family has coordinates.
    Switches: ``latency`` (traversal seconds), ``reduction`` (bool: can reduce in-network);
    a reducing switch also ``reduction_bandwidth`` (operand bytes/s its reduction engines
    consume) and ``reduction_latency`` (seconds per reduction), defaulting to its
    generation's (:data:`netsim.core.linktypes.REDUCTION_ENGINES`; none: no limit).
Edge attributes
    ``bandwidth`` (bytes/s per direction of the full-duplex edge), ``latency`` (propagation,
    seconds), ``link`` (a :mod:`netsim.core.linktypes` name such as ``nvlink``, ``ib``, ``ici``,
    ``wafer``), ``count`` (parallel physical links aggregated into this edge: its bandwidth is
    ``count`` times one link's).
Graph attributes
    ``family``, ``params`` (the parameters, SI units), ``name`` (spec string or preset), and
    ``chips``. Where the family has a closed form, ``bisection_bandwidth`` (bytes/s, one
    direction, across the minimum balanced cut of the chips).
"""
