"""``netsim sweep``: run a sweep spec into an HDF5 results file (a layer over run_sweep)."""

from __future__ import annotations

import argparse
import sys

from netsim.app.commands._common import add_command, print_json
from netsim.app.sweep import by_cost, load_spec, run_sweep
from netsim.app.sweep_cost import estimate_cost
from netsim.core.units import format_time

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "sweep", _run)
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep spec (YAML)")
    p.add_argument("--out", required=True, help="HDF5 results file (created or resumed)")
    p.add_argument(
        "--workers",
        default=None,
        help="worker processes (default: CPU count; 1: serial; at most 4 per CPU)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://host:port")
    where.add_argument(
        "--cluster", choices=("local",), help="start a Dask LocalCluster with --workers workers"
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add the points to an --out file made from a different spec",
    )
    p.add_argument("--no-retry", action="store_true", help="do not re-run points that failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only count the points of SPEC and estimate their cost (packets or flows)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _dry_run(spec_path: str, as_json: bool, top: int = 10) -> int:
    """Count the points, estimate each one's cost and the total, without running any."""
    points = by_cost(load_spec(spec_path).points())
    kinds = sorted({pt.kind for pt in points})
    costs = [estimate_cost(pt.kind, pt.params) for pt in points]
    known = [c for c in costs if c is not None]
    total, unknown = sum(known), len(costs) - len(known)
    if as_json:
        rows = [
            {"point_id": pt.point_id, "kind": pt.kind, "params": dict(pt.params), "cost": c}
            for pt, c in zip(points, costs, strict=True)
        ]
        print_json(
            {"points": len(points), "kinds": kinds, "cost_total": total,
             "not_estimated": unknown, "costs": rows}
        )  # fmt: skip
        return 0
    print(f"{len(points)} points ({', '.join(kinds)})")
    print(
        f"estimated cost {total:,} packets or flows simulated"
        + (f"; {unknown} points not estimated" if unknown else "")
        + " (netsim.app.sweep_cost); the most expensive run first:"
    )
    for pt, c in list(zip(points, costs, strict=True))[:top]:
        if c is not None:
            params = ", ".join(f"{k}={v}" for k, v in pt.params.items() if k != "seed")
            print(f"  {c:>14,}  {pt.kind}: {params}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Run a parameter sweep (YAML spec) into an HDF5 results file.

    Run every point of SPEC not yet in --out (re-running resumes). Points run on a local process
    pool, or on Dask workers with --scheduler/--cluster. See docs/sweeps.md.
    """
    if args.dry_run:
        return _dry_run(args.spec, args.json)
    summary = run_sweep(
        args.spec,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        cluster=args.cluster,
        progress=not args.no_progress,
        retry_failed=not args.no_retry,
        append=args.append,
    )
    if args.json:
        print_json(summary.to_dict())
    else:
        print(
            f"{summary.out}: {summary.ran} points run ({summary.failed} failed), "
            f"{summary.skipped} already done, {summary.total} in the spec; "
            f"{format_time(summary.wall_s)} on {summary.executor}"
        )
    _report_errors(summary.errors)
    return 1 if summary.failed else 0


def _report_errors(errors: dict[str, int], limit: int = 5) -> None:
    """The distinct errors of the failed points, most frequent first, on stderr."""
    ranked = sorted(errors.items(), key=lambda kv: -kv[1])
    for msg, n in ranked[:limit]:
        print(f"failed ({n} point{'s' if n > 1 else ''}): {msg}", file=sys.stderr)
    if len(ranked) > limit:
        print(f"... and {len(ranked) - limit} other errors (column 'error')", file=sys.stderr)
