"""The collective builders share one signature, one refusal of unknown options and one
set of parameter docs (:func:`collectives._common.builder`)."""

from __future__ import annotations

import inspect
import re

import pytest

from collectives import build
from collectives._common import (
    BUILDER_PARAMETERS,
    BUILDER_RETURNS,
    BuildRequest,
    builder,
    builder_doc,
)
from collectives.algorithms import ALGORITHMS, resolve
from collectives.schedule import Schedule
from netsim.core.errors import ConfigError

COMMON = list(BUILDER_PARAMETERS)
ENTRY = re.compile(r"^(\w+(?:, \w+)*)(?: :|$)", re.M)


@pytest.mark.parametrize("key", sorted(ALGORITHMS))
def test_every_builder_has_the_shared_signature_and_documents_it_in_order(key):
    fn = resolve(*key)
    assert list(inspect.signature(fn).parameters) == [*COMMON, "opts"]
    doc = fn.__doc__
    params = doc[doc.index("Parameters") :]
    params = params[: min((params.find(s) for s in ("Returns", "Raises") if s in params),
                          default=len(params))]  # fmt: skip
    names = [n for e in ENTRY.findall(params) for n in e.split(", ")]
    common = [n for n in names if n in COMMON]
    assert common == COMMON  # each once, in signature order, before the algorithm's own


@pytest.mark.parametrize(("algo", "opt"), [("tree", "pxn"), ("nvls", "dims"), ("ring", "dims")])
def test_an_option_the_algorithm_does_not_take_is_refused_naming_it(algo, opt):
    with pytest.raises(ConfigError, match=rf"^{opt}: not an option of the {algo} algorithm, got 1"):
        build("allreduce", algo, range(4), 8, **{opt: 1})


def test_builder_passes_the_request_and_the_declared_options():
    seen = {}

    @builder("probe", options=("width",))
    def probe(req: BuildRequest, *, width: int = 1) -> Schedule:
        """Probe.

        Parameters
        ----------
        chunks : int, optional
            Its own words.
        width : int
            An option.
        """
        seen.update(req=req, width=width)
        return Schedule("allgather", "probe", tuple(req.ranks), req.count, req.itemsize)

    s = probe([0, 1], 4, itemsize=2, chunks=3, width=5)
    assert seen["req"] == BuildRequest([0, 1], 4, 2, None, 3, 0, None) and seen["width"] == 5
    assert (s.ranks, s.count, probe.__name__) == ((0, 1), 4, "probe")
    doc = probe.__doc__
    assert "Its own words." in doc and doc.count("chunks :") == 1
    assert doc.index("ranks :") < doc.index("chunks :") < doc.index("root :") < doc.index("width :")


def test_builder_doc_makes_a_parameters_section_when_there_is_none():
    doc = builder_doc("""One line.\n    """)
    assert all(f"\n{n} :" in doc for n in COMMON) and doc.count("Parameters") == 1


def test_builder_doc_adds_the_shared_returns_only_where_there_is_none():
    own = builder_doc("One.\n\nReturns\n-------\nSchedule\n    Its own words.\n")
    assert own.count("Returns") == 1 and "Its own words." in own
    made = builder_doc("One.\n\nRaises\n------\nConfigError\n    Bad.\n")
    assert made.index("matrix :") < made.index(BUILDER_RETURNS) < made.index("Raises")


def test_build_documents_op_and_algo_then_the_shared_arguments_then_opts():
    doc = build.__doc__
    order = ["op :", "algo :", *(f"{n} :" for n in COMMON), "**opts", "Returns", "Raises"]
    assert [doc.index(s) for s in order] == sorted(doc.index(s) for s in order)
