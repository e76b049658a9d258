"""The curated top-level API of :mod:`netsim`: every advertised name resolves."""

from __future__ import annotations

import pytest

import netsim


@pytest.mark.parametrize("name", netsim.__all__)
def test_every_public_name_resolves(name):
    assert getattr(netsim, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        netsim.no_such_name  # noqa: B018


def test_lazy_names_are_the_module_objects():
    from netsim.app.sweep import run_sweep
    from netsim.core.engine import PacketNetwork

    assert netsim.PacketNetwork is PacketNetwork
    assert netsim.run_sweep is run_sweep


def test_workloads_decode_is_the_function_even_after_the_module_is_imported():
    import sys

    import workloads.decode  # noqa: F401  (the submodule)
    from workloads import decode

    assert callable(decode) and decode is sys.modules["workloads.decode"].decode
