"""Labels in sweep specs: ``{value: X, label: "Short name"}`` runs X and names it in figures."""

from __future__ import annotations

import pytest

from netsim.app.plots import plot_results
from netsim.app.sweep import run_sweep
from netsim.app.sweep_spec import load_spec, point_id, spec_labels
from netsim.core.errors import ConfigError

LABELLED = {
    "kind": "probe",
    "sweep": {
        "x": [1, 2],
        "topo": [{"value": "ring:n=4", "label": "Ring (four)"}, "dgx-h100"],
        "net": [{"value": "fab:a=1", "label": "Fabric A"}, "plain"],
    },
}
PLAIN = {
    "kind": "probe",
    "sweep": {"x": [1, 2], "topo": ["ring:n=4", "dgx-h100"], "net": ["fab:a=1", "plain"]},
}


def test_labelled_values_expand_to_the_value_with_the_same_point_id():
    labelled, plain = load_spec(LABELLED).points(), load_spec(PLAIN).points()
    assert [p.params for p in labelled] == [p.params for p in plain]
    assert [p.point_id for p in labelled] == [p.point_id for p in plain]
    first = labelled[0]
    assert first.params["topo"] == "ring:n=4"
    assert first.point_id == point_id(
        "probe", {"x": 1, "topo": "ring:n=4", "net": "fab:a=1", "seed": 0}
    )
    assert spec_labels(LABELLED) == {"ring:n=4": "Ring (four)", "fab:a=1": "Fabric A"}


@pytest.mark.parametrize(
    "item",
    [
        {"value": "ring:n=4", "label": ""},
        {"value": "ring:n=4", "label": 3},
        {"value": "ring:n=4"},
        {"value": "ring:n=4", "label": "R", "colour": "red"},
    ],
)
def test_bad_labels_are_refused_naming_the_parameter(item):
    with pytest.raises(ConfigError, match=r"^topo: ") as exc:
        load_spec({"kind": "probe", "sweep": {"topo": [item, "dgx-h100"]}})
    assert "\n" not in str(exc.value)


def test_figure_panel_titles_and_legend_use_the_labels(tmp_path):
    out = tmp_path / "r.h5"
    run_sweep(LABELLED, out, workers=1, progress=False)
    fig = plot_results(out, x="x", y="sum", col="topo", hue="net")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sorted(titles) == ["Ring (four)", "dgx-h100"]
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    texts = sorted(t.get_text() for lg in legends for t in lg.get_texts())
    assert texts == ["Fabric A", "plain"]
