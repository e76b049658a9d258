"""``netsim train``: one data-parallel training step with bucketed gradient all-reduce
overlapped with the backward pass (a layer over :func:`workloads.train.train_step`).

A step whose training state does not fit in memory is reported (exit 0, ``fits`` false).
"""

from __future__ import annotations

import argparse

from netsim.app.commands._common import add_command, add_options, options_from_args, print_json
from netsim.core.units import format_size, format_time

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand: its options are those of
    :class:`workloads.options.TrainOptions` (:func:`add_options`)."""
    from workloads.options import TrainOptions

    p = add_command(sub, "train", _run)
    p.add_argument("--model", required=True)
    p.add_argument(
        "--chip",
        required=True,
        help="chip preset or spec, e.g. h100 or h100:hbm.bandwidth=6.7TB/s,kernel_launch=0",
    )
    p.add_argument("--topo", required=True)
    add_options(p, TrainOptions)
    p.add_argument("--json", action="store_true")


def _run(args: argparse.Namespace) -> int:
    """One training step: compute, TP traffic, bucketed gradient all-reduce.

    Time one training step: 6ND compute, pipeline bubble, TP all-reduces, and the gradient
    all-reduce in buckets overlapped with the last backward pass.
    """
    from netsim.app.commands.decode import describe_library
    from workloads.options import TrainOptions
    from workloads.train import train_step

    opts = options_from_args(args, TrainOptions)
    r = train_step(args.model, args.chip, args.topo, options=opts)
    d = r.to_dict()
    if args.json:
        print_json(d)
        return 0
    print(
        f"train: {d['llm']} on {d['chip']}, tp={d['tp']} pp={d['pp']} dp={d['dp']}, "
        f"topology {d['topo']}"
    )
    if not r.fits:
        print(f"does not fit: {d['memory']['summary']}")
        return 0
    print(f"backend {d['network_model']}, gradient all-reduce {d['allreduce']}, seed {d['seed']}")
    print(describe_library(d))
    print(f"step time {format_time(d['step_time_s'])}  (MFU {d['mfu']:.1%})")
    for key, name in (
        ("compute_s", "compute"),
        ("bubble_s", "pipeline bubble"),
        ("tp_comm_s", "TP all-reduces"),
        ("pp_comm_s", "PP sends"),
        ("grad_comm_s", "gradient comm"),
        ("exposed_comm_s", "  of it exposed"),
    ):
        print(f"  {name:16s} {format_time(d[key]):>10}")
    print(
        f"{d['buckets']} buckets of {format_size(d['bucket'])}, "
        f"{d['grad_bytes_per_chip'] / 1e9:.4g} GB of gradients per chip"
    )
    print(f"tokens/s {d['tokens_per_s']:.4g} ({d['tokens_per_s_per_chip']:.4g} per chip)")
    return 0
