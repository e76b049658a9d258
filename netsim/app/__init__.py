"""The face: the command line, sweeps, results files, figures and the quickstart study.

Every CLI command (:mod:`netsim.app.commands`) is a thin layer over a public function of
:mod:`collectives`, :mod:`workloads` or :mod:`netsim.core`; :mod:`netsim.app.sweep` runs
study points from a YAML spec into :mod:`netsim.app.results` files that
:mod:`netsim.app.plots` draws. Nothing in :mod:`netsim.core` imports this package.
"""
