"""``netsim quickstart``: run the built-in study and draw its figures (netsim.app.quickstart)."""

from __future__ import annotations

import argparse

from netsim.app.commands._common import add_command, print_json
from netsim.app.quickstart import quickstart
from netsim.core.validate import require_writable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "quickstart", _run)
    p.add_argument("--out", default="netsim-quickstart", metavar="DIR")
    p.add_argument("--workers", type=int, default=None, help="worker processes")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")


def _run(args: argparse.Namespace) -> int:
    """Run a small built-in study (all-reduce vs size, decode) and draw figures.

    All-reduce latency vs message size on five fabric families and decode token latency on
    several fabrics; writes DIR/results.h5 and DIR/*.png, *.pdf. Re-running resumes.
    """
    require_writable("out", args.out, directory=True)
    res = quickstart(args.out, workers=args.workers, progress=not args.no_progress)
    s = res["summary"]
    if args.json:
        print_json(
            {
                "summary": s.to_dict(),
                "results": str(res["results"]),
                "figures": [str(f) for f in res["figures"]],
                "skipped_figures": res["skipped_figures"],
            }
        )
        return 0
    print(f"{res['results']}: {s.ran} points run ({s.failed} failed), {s.skipped} already done")
    for f in res["figures"]:
        print(f)
    for stem, why in res["skipped_figures"].items():
        print(f"skipped {stem}: {why}")
    return 0
