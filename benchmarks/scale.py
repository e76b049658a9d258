"""Scaling benchmark: a fixed table of study points, and how wall time
grows with the chip count.

Every point is the CLI command of that table run in a fresh subprocess
(``python -m netsim ...``), so it is measured whatever the implementation behind it: wall
time (best of ``--repeat``, default 3), the peak resident memory of that run (``ru_maxrss``
of the child) and the simulated result read from its ``--json`` output, next to the goal.
Then the growth of wall time with chip count (64, 256, 1,024, 4,096) for a decode point
(DeepSeek-V3, one expert-parallel instance of 64 chips per 64 chips of a 3-D torus, every
replica on the fabric at once) and a collective (the multi-dimensional torus all-reduce of
1 MiB per rank over every chip), with the exponent ``b`` of ``wall ~ chips^b`` between
consecutive sizes.

Run from the repository root::

    python benchmarks/scale.py              # everything, best of 3 (about 30 minutes)
    python benchmarks/scale.py --quick      # best of 1, growth up to 1,024 chips
    python benchmarks/scale.py --only torus32-ring --repeat 5
    python benchmarks/scale.py --json scale.json

No timing is asserted anywhere (the tests never time anything); this script reports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The 297-point sweep of the issue: all-reduce on the five quickstart fabrics, 8 B - 8 MiB
#: (x4), six algorithms, in-network only where the switches reduce (5 x 5 x 11 + 2 x 11).
SWEEP_SPEC = """\
name: allreduce-297
description: scaling sweep, all-reduce on five fabrics, 8 B - 8 MiB, six algorithms
kind: collective
fixed: {op: allreduce, backend: packet, step_overhead: 0.0, launch_overhead: 0.0}
seeds: [0]
sweep:
  - sweep:
      topo: [dgx-h100, "fat-tree-k4:reduction=true", "torus:dims=4x4", "dragonfly:a=4,p=2,h=1",
             "wafer:dies=4x4"]
      algo: [ring, ring-bidir, tree, oneshot, twoshot]
      size: {sizes: "8B:8MiB:x4"}
  - sweep:
      topo: [dgx-h100, "fat-tree-k4:reduction=true"]
      algo: [innetwork]
      size: {sizes: "8B:8MiB:x4"}
"""


@dataclass(frozen=True)
class Row:
    """One point: its name, CLI arguments (after ``python -m netsim``), goal and result."""

    name: str
    args: tuple[str, ...]
    goal_s: float
    result: Callable[[Any], str]
    goal_mb: float | None = None


def _cli(text: str) -> tuple[str, ...]:
    """The arguments of a command line (after ``python -m netsim``)."""
    return tuple(text.split())


def _decode(r: Any) -> str:
    if not r.get("fits", True):
        return "does not fit"
    return f"token {r['token_latency_s'] * 1e3:.4g} ms, fabric {r['fabric_s'] * 1e6:.4g} us"


def _collective(r: Any) -> str:
    return (
        f"time {r['time_s'] * 1e6:.6g} us, busbw {r['busbw'] / 1e9:.4g} GB/s ({r['network_model']})"
    )


def _traffic(r: Any) -> str:
    rows = r if isinstance(r, list) else [r]
    parts = []
    for x in rows:
        sat = " saturated" if x.get("saturated") else ""
        acc = x.get("accepted_load")
        acc_s = f" accepted {acc:.3g}" if isinstance(acc, int | float) else ""
        parts.append(f"load {x.get('offered_load')}:{acc_s}{sat}")
    return "; ".join(parts)


def _topo(r: Any) -> str:
    keys = ("chips", "diameter", "bisection_links", "hops_method")
    return ", ".join(f"{k} {r[k]}" for k in keys if k in r)


def _sweep(r: Any) -> str:
    keys = ("run", "failed", "done", "total")
    found = {k: r[k] for k in keys if k in r}
    return ", ".join(f"{k} {v}" for k, v in found.items()) or "done"


ROWS = [
    Row(
        "decode-hier32",
        _cli(
            "decode --model deepseek-v3 --chip h200 --topo hierarchical:nodes=32 --tp 1 "
            "--ep 256 --batch 32768 --backend packet --json"
        ),
        60.0,
        _decode,
    ),
    Row(
        "nvl72-flow",
        _cli(
            "collective --topo nvl72 --op allreduce --algo ring --size 1GiB --backend flow --json"
        ),
        10.0,
        _collective,
    ),
    Row(
        "nvl72x2-nvls-tree-flow",
        _cli(
            "collective --topo nvl72-superpod-2 --algo nvls-tree --size 1GiB --backend flow --json"
        ),
        60.0,
        _collective,
        goal_mb=2000.0,
    ),
    Row(
        "nvl72x2-auto-flow",
        _cli("collective --topo nvl72-superpod-2 --size 1GiB --backend flow --json"),
        60.0,
        _collective,
        goal_mb=2000.0,
    ),
    Row(
        "nvl72x20-nvls-tree-analytical",
        _cli(
            "collective --topo nvl72-superpod-2:nodes=20 --algo nvls-tree --size 8GiB "
            "--backend analytical --json"
        ),
        120.0,
        _collective,
        goal_mb=2000.0,
    ),
    Row(
        "torus32-ring",
        _cli("collective --topo torus:dims=32x32 --algo ring --size 1MiB --backend packet --json"),
        20.0,
        _collective,
        goal_mb=1000.0,
    ),
    Row(
        "tpu-pod-decode",
        _cli(
            "decode --model deepseek-v3 --chip h200 --topo tpu-v4-pod --ep 64 --backend packet "
            "--json"
        ),
        30.0,
        _decode,
    ),
    Row(
        "tpu-pod-decode-64",
        _cli(
            "decode --model deepseek-v3 --chip h200 --topo tpu-v4-pod --ep 64 --dp 4096 "
            "--backend packet --json"
        ),
        30.0,
        _decode,
    ),
    Row(
        "traffic-8x8",
        _cli(
            "traffic --topo torus:dims=8x8 --pattern uniform --buffer 4KiB --loads 0.3,0.6,0.9 "
            "--json"
        ),
        60.0,
        _traffic,
    ),
    Row("topo-1024x1024", _cli("topo torus:dims=1024x1024 --json"), 60.0, _topo),
    Row(
        "sweep-297", ("sweep", "{spec}", "--out", "{out}", "--no-progress", "--json"), 120.0, _sweep
    ),
]

#: Growth with chip count: (chips, torus dims) for the decode point and the collective.
GROWTH = [(64, "4x4x4"), (256, "8x8x4"), (1024, "16x8x8"), (4096, "16x16x16")]


def growth_rows(quick: bool) -> list[tuple[str, int, Row]]:
    """The decode and collective points of the growth table (up to 1,024 chips if quick)."""
    out = []
    for chips, dims in GROWTH[:3] if quick else GROWTH:
        decode = _cli(
            f"decode --model deepseek-v3 --chip h200 --topo torus:dims={dims} --ep 64 "
            f"--dp {chips} --backend packet --json"
        )
        coll = _cli(
            f"collective --topo torus:dims={dims} --algo torus --size 1MiB --backend packet "
            "--no-estimate --json"
        )
        out.append(("decode", chips, Row(f"decode-{chips}", decode, math.inf, _decode)))
        out.append(("collective", chips, Row(f"torus-{chips}", coll, math.inf, _collective)))
    return out


def measure(row: Row, tmp: Path) -> tuple[float, float, str]:
    """Run ``row`` once in a subprocess: (wall s, peak MB, simulated result)."""
    out = tmp / "out.h5"
    out.unlink(missing_ok=True)
    spec = tmp / "sweep.yaml"
    spec.write_text(SWEEP_SPEC)
    args = [a.format(spec=spec, out=out) for a in row.args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "netsim", *args], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        text = stdout.read().decode()
        stderr.seek(0)
        err = stderr.read().decode().strip().splitlines()
    peak = usage.ru_maxrss / 1024.0  # KiB on Linux
    if proc.returncode != 0:
        return wall, peak, f"exit {proc.returncode}: {(err or ['no output'])[-1][:120]}"
    try:
        return wall, peak, row.result(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        return wall, peak, f"unreadable output ({exc})"


def best_of(row: Row, repeat: int, tmp: Path) -> dict[str, Any]:
    """Best wall time of ``repeat`` runs, with the peak memory and result of that run."""
    runs = [measure(row, tmp) for _ in range(repeat)]
    wall, peak, result = min(runs, key=lambda r: r[0])
    return {"name": row.name, "wall_s": wall, "peak_mb": peak, "result": result, "runs": repeat}


def _print_row(r: dict[str, Any], row: Row) -> None:
    goal = f"< {row.goal_s:g} s" + (f", < {row.goal_mb:g} MB" if row.goal_mb else "")
    ok = r["wall_s"] < row.goal_s and (row.goal_mb is None or r["peak_mb"] < row.goal_mb)
    ok = ok and not r["result"].startswith(("exit ", "unreadable"))
    print(
        f"{row.name:<18} {r['wall_s']:8.1f} s {r['peak_mb']:8.0f} MB  {goal:<18} "
        f"{'meets' if ok else 'MISSES':<7} {r['result']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per point, best kept (3)")
    ap.add_argument("--quick", action="store_true", help="best of 1, growth up to 1,024 chips")
    ap.add_argument("--only", default=None, help="comma list of row names (table and growth)")
    ap.add_argument("--no-growth", action="store_true", help="skip the growth table")
    ap.add_argument(
        "--growth-repeat", type=int, default=None, help="runs per growth point (--repeat)"
    )
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = ap.parse_args(argv)
    repeat = 1 if a.quick else max(1, a.repeat)
    only = set(a.only.split(",")) if a.only else None
    results: dict[str, Any] = {"repeat": repeat, "rows": [], "growth": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        load = os.getloadavg()[0]
        print(f"scaling table: best of {repeat}, {os.cpu_count()} CPUs, load {load:.1f}")
        print(f"{'point':<18} {'wall':>10} {'peak':>11}  {'goal':<18} {'':<7} simulated result")
        for row in ROWS:
            if only is None or row.name in only:
                r = best_of(row, repeat, tmp)
                results["rows"].append(r)
                _print_row(r, row)
        if not a.no_growth:
            g_repeat = repeat if a.growth_repeat is None else max(1, a.growth_repeat)
            results["growth"] = _growth(g_repeat, a.quick, only, tmp)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


def _growth(repeat: int, quick: bool, only: set[str] | None, tmp: Path) -> list[dict[str, Any]]:
    print("\ngrowth with chip count (wall ~ chips^b between consecutive sizes)", flush=True)
    print(f"{'point':<11} {'chips':>6} {'wall':>9} {'peak':>9} {'b':>6}  simulated result")
    out: list[dict[str, Any]] = []
    last: dict[str, tuple[int, float]] = {}
    for kind, chips, row in growth_rows(quick):
        if only is not None and row.name not in only:
            continue
        r = {**best_of(row, repeat, tmp), "kind": kind, "chips": chips}
        prev = last.get(kind)
        b = math.log(r["wall_s"] / prev[1]) / math.log(chips / prev[0]) if prev else None
        r["exponent"] = b
        last[kind] = (chips, r["wall_s"])
        out.append(r)
        b_s = f"{b:6.2f}" if b is not None else f"{'':>6}"
        print(
            f"{kind:<11} {chips:>6} {r['wall_s']:7.1f} s {r['peak_mb']:6.0f} MB {b_s}  "
            f"{r['result']}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
