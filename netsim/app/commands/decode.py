"""``netsim decode``: token latency of decode (or prefill) on a topology (a layer over
:func:`workloads.decode.decode`).

A configuration that does not fit in memory is a valid answer: it prints the capacity report
(or ``"fits": false`` in JSON) and exits 0. Bad input exits 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from netsim.app.commands._common import add_command, add_options, options_from_args, print_json
from netsim.core.units import format_time
from workloads.chips import CHIPS, chip_names

__all__ = ["describe_library", "model_and_chip", "register"]


def describe_library(d: dict) -> str:
    """One line naming the collective library costs applied (the result's library keys)."""
    if d["library"] == "none" and not (d["step_overhead"] or d["collective_launch"]):
        return "collective library none (hardware only)"
    links = f" on {d['library_links']}" if d["library_links"] else ""
    return (
        f"collective library {d['library']}{links}: launch {format_time(d['collective_launch'])}"
        f", step {format_time(d['step_overhead'])}, efficiency "
        f"{d['collective_efficiency']:.3g}, multipath {'on' if d['multipath'] else 'off'}"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``decode`` subcommand: its options are those of
    :class:`workloads.options.DecodeOptions` (:func:`add_options`) and the run's own."""
    from workloads.models import WEIGHT_DTYPES
    from workloads.options import DecodeOptions

    p = add_command(sub, "decode", _run)
    p.add_argument("--list", action="store_true", help="list model and chip presets and exit")
    p.add_argument("--model", help="model preset, e.g. llama3-70b")
    p.add_argument(
        "--chip",
        help="chip preset or spec, e.g. h100 or h100:hbm.bandwidth=6.7TB/s,kernel_launch=0",
    )
    p.add_argument("--topo", help="topology spec or preset, e.g. dgx-h100")
    p.add_argument(
        "--dp",
        type=int,
        default=None,
        help="data-parallel ranks (default: one model instance, dp = ep; more replicas share "
        "the fabric)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="sequences per model instance (default: the smallest the sharding allows: 1, or "
        "--ep with expert parallelism)",
    )
    p.add_argument(
        "--dtype",
        default=None,
        choices=tuple(WEIGHT_DTYPES),
        help="weight, activation and compute data type (default: the model's, e.g. bf16; "
        "DeepSeek-V3 fp8); fp4 = 4-bit weights with fp8 activations and compute",
    )
    p.add_argument("--context", type=int, default=4096, help="KV-cache tokens per sequence")
    p.add_argument(
        "--prefill",
        type=int,
        default=None,
        metavar="PROMPT",
        help="time a prefill of PROMPT tokens instead of a decode step",
    )
    p.add_argument(
        "--kernel-launch",
        "--launch-overhead",
        dest="kernel_launch",
        default=None,
        metavar="TIME",
        help="override the chip's per-operator (kernel) launch overhead (0 = CUDA graphs); "
        "--launch-overhead is its former name",
    )
    add_options(p, DecodeOptions, skip=("batch", "dp", "kernel_launch"))
    p.add_argument("--json", action="store_true", help="print JSON")


def model_and_chip(model: str, chip: str, dtype: str | None = None) -> tuple[Any, Any]:
    """The model (in ``dtype`` if given, :func:`workloads.models.with_dtype`) and chip of
    a decode or prefill run.

    Raises
    ------
    ConfigError
        Unknown model or chip, or a chip without a peak rate for the model's compute data
        type (the message suggests ``--dtype`` with one the chip has).
    """
    from netsim.core.errors import ConfigError
    from workloads.chips import chip as get_chip
    from workloads.models import WEIGHT_DTYPES, with_dtype
    from workloads.models import model as get_model

    m, c = get_model(model), get_chip(chip)
    if dtype is not None:
        m = with_dtype(m, dtype)
    try:
        c.peak(m.compute_dtype)
    except ConfigError:
        has = [t for t in WEIGHT_DTYPES if t != "fp4" and _has_peak(c, t)]
        hint = f"; give --dtype {has[0]}" if has else ""
        raise ConfigError(
            f"dtype: {m.name} computes in {m.compute_dtype} and chip {c.name!r} has no "
            f"{m.compute_dtype} rate (it lists {', '.join(c.peak_flops)}){hint}"
        ) from None
    return m, c


def _has_peak(c: Any, dtype: str) -> bool:
    from netsim.core.errors import ConfigError

    try:
        c.peak(dtype)
    except ConfigError:
        return False
    return True


def _list() -> int:
    from workloads.models import MODELS, model_names

    print("models:")
    for name in model_names():
        m = MODELS[name]
        print(f"  {name:16s} {m.total_params() / 1e9:8.2f} B params  {m.description}")
    print("chips:")
    for name in chip_names():
        print(f"  {name:16s} {CHIPS[name].description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Per-token decode latency: roofline compute + collectives on the fabric.

    Time one decode step (or a prefill with --prefill) of a model on a chip and topology:
    roofline compute/memory time plus TP all-reduces, MoE all-to-alls and pipeline sends
    simulated on the backend. Not fitting in memory is reported (exit 0).
    """
    from netsim.core.errors import ConfigError
    from workloads.decode import decode, prefill
    from workloads.options import DecodeOptions

    if args.list:
        return _list()
    for flag in ("model", "chip", "topo"):
        if not getattr(args, flag):
            raise ConfigError(f"--{flag}: required (or use --list)")
    llm, chip = model_and_chip(args.model, args.chip, args.dtype)
    opts = options_from_args(args, DecodeOptions, batch=args.batch or 1, dp=args.dp)
    # one model instance at the smallest batch its sharding allows unless asked otherwise
    batch = args.batch if args.batch is not None else max(1, opts.ep)
    opts = opts.replace(batch=batch, dp=args.dp if args.dp is not None else opts.ep)
    if args.prefill is not None:  # the straggler options apply to decode steps only
        opts = opts.replace(stragglers="none", straggler_policy="wait", tokens=1)
        r = prefill(llm, chip, args.topo, prompt=args.prefill, options=opts)
    else:
        r = decode(llm, chip, args.topo, context=args.context, options=opts)
    d = r.to_dict()
    if args.json:
        print_json(d)
        return 0
    what = "prefill" if args.prefill is not None else "decode"
    why = "" if args.batch is not None else " (default: the smallest the sharding allows)"
    dtype = f", {args.dtype} weights" if args.dtype else ""
    print(
        f"{what}: {d['llm']} on {d['chip']} x{opts.tp * opts.pp * opts.ep} per instance "
        f"(tp={opts.tp}, pp={opts.pp}, ep={opts.ep}, dp={d['dp']}), topology {d['topo']}, "
        f"batch {batch}{why}{dtype}"
    )
    if not r.fits:
        print(f"does not fit: {d['capacity']['summary']}")
        return 0
    _print_result(d, what)
    return 0


def _print_result(d: dict[str, Any], what: str) -> None:
    """The text report of a run that fits: algorithms, latency parts, sites, throughput,
    stragglers and energy."""
    algos = f"all-reduce {d['allreduce'] or 'none (tp=1)'}"
    if d["dispatch"] is not None:
        algos += (
            f", MoE dispatch {d['dispatch']} ({d['dispatch_dtype']}, "
            f"{d['dispatch_bytes_per_token']:g} B/token), combine {d['combine']} "
            f"({d['combine_dtype']}, {d['combine_bytes_per_token']:g} B/token)"
        )
    print(f"backend {d['network_model']}, {algos}, seed {d['seed']}")
    print(describe_library(d))
    label = "time to first token" if what == "prefill" else "token latency"
    print(f"{label}: {format_time(d['token_latency_s'])}")
    for key, name in (
        ("compute_s", "compute-bound"),
        ("memory_s", "memory-bound"),
        ("launch_s", "launch overhead"),
        ("fabric_s", "exposed fabric"),
    ):
        print(f"  {name:16s} {format_time(d[key]):>10}")
    for s in d["collective_sites"]:
        print(
            f"    {s['name']:14s} stage {s['stage']} {s['algo']:>12s} x{s['count']:<4d} "
            f"{format_time(s['time_s']):>10} each"
        )
    if d.get("moe_dispatch_s") is not None:
        disp, comb = d["moe_dispatch_s"], d["moe_combine_s"]
        print(
            f"  MoE per layer: dispatch {format_time(disp)}, combine {format_time(comb)} "
            f"(combine/dispatch {comb / disp:.2f})"
        )
    print(f"tokens/s per user {d['tokens_per_s']:.4g}, per chip {d['tokens_per_s_per_chip']:.4g}")
    if d["stragglers"] != "none":
        print(
            f"p50 {format_time(d['token_latency_p50_s'])}  p99 {format_time(d['token_latency_p99_s'])}"
            f"  p99.9 {format_time(d['token_latency_p999_s'])}  substituted "
            f"{d['substituted_fraction']:.3%}"
        )
    cost = d["cost_per_mtok_usd"]
    print(
        f"energy {d['energy_per_token_j']:.4g} J/token, CO2e {d['co2e_per_token_g']:.4g} g/token"
        + ("" if cost is None or cost != cost else f", {cost:.4g} USD per million tokens")
    )
