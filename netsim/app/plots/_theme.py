"""Colours, markers and matplotlib rc settings shared by every figure of :mod:`netsim.app.plots`.

The Okabe-Ito colour-blind-safe palette (:data:`OKABE_ITO`, cited in
:data:`PALETTE_SOURCE`) with one marker per line, and the rc settings (``RC_STYLE``) under
which figures are drawn and saved: small fonts, light grid, TrueType fonts in PDF
(``pdf.fonttype 42``) and text kept as text in SVG.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MARKERS",
    "OKABE_ITO",
    "PALETTE_SOURCE",
    "RC_STYLE",
    "line_style",
]

#: Okabe-Ito colours, in the order lines get them (yellow last: weak on white).
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
PALETTE_SOURCE = (
    "Okabe M., Ito K., 'Color Universal Design (CUD): how to make figures and presentations "
    "that are friendly to colorblind people' (2002/2008), https://jfly.uni-koeln.de/color/; "
    "the same eight colours in Wong B., 'Points of view: Color blindness', Nature Methods "
    "8:441 (2011)."
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
RC_STYLE = {
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "savefig.bbox": "tight",
}


def line_style(i: int) -> dict[str, Any]:
    """Colour and marker of the ``i``-th line (cycling through the palette)."""
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)]}
