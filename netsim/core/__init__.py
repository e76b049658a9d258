"""The ground floor: errors, units, link types, the Backend seam and the three backends.

Nothing here imports :mod:`netsim.app`, :mod:`collectives` or :mod:`workloads`:

- :mod:`netsim.core.errors`, :mod:`netsim.core.units`, :mod:`netsim.core.validate`: the
  exception hierarchy, SI units with parsers, checks at public entry points;
- :mod:`netsim.core.options`: options objects, the single list of a study's options (units,
  rules, help) from which the CLI arguments and sweep parameters are made;
- :mod:`netsim.core.linktypes`: link-type presets (bandwidth, latency, MTU, header);
- :mod:`netsim.core.backend`: the Backend protocol that collectives and workloads use;
- :mod:`netsim.core.engine` (packet), :mod:`netsim.core.flow` (max-min flows),
  :mod:`netsim.core.analytical` (alpha-beta): the three backends;
- :mod:`netsim.core.traffic`, :mod:`netsim.core.openloop`, :mod:`netsim.core.sampling`:
  synthetic open-loop traffic measured as BookSim does.
"""
