"""Chip presets as plain data, with the source of every number.

:mod:`workloads.chips` turns each entry of :data:`CHIP_DATA` into a :class:`~workloads.chips.Chip`.
Every value is SI: FLOP/s, bytes, bytes/s, seconds, watts, US dollars. Peak FLOP/s are
**dense** (no 2:4 structured sparsity): vendors often print the sparse figure, which is twice
the dense one; where they do, the dense value here is half of it and the source says so.

Each entry has a ``sources`` dict mapping a field name (``peak_flops.bf16``, ``tiers.hbm``,
``kernel_launch``, ``injection_bandwidth``, ``landing_latency``, ``power``, ``price``) to
a citation. Values that nobody publishes are marked ``estimate:`` in their source, with the
reasoning; treat them as knobs to sweep, not facts. A field an entry leaves out takes the
default of :class:`~workloads.chips.Chip`: ``None`` for ``idle_power``, ``peak_power`` and
``price`` means unknown (not published and no defensible estimate; functions that need such
a value refuse it with a clear error), and ``price_is_estimate`` is True (every price here is
an estimate).

Memory tier tuples are ``(name, capacity_bytes, bandwidth_bytes_per_s, latency_s)``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHIP_DATA"]

_GPU_LAUNCH = (
    "estimate: a few microseconds per CUDA/HIP kernel launch (host dispatch + GPU front end); "
    "NVIDIA 'Getting Started with CUDA Graphs' (developer blog, 2019) motivates graphs by "
    "launch overheads of this order, and ~5 us dispatch paths are reported on B200 (2026 "
    "kernel-dispatch measurements). Set 0 to model CUDA graphs / persistent kernels."
)
_HBM_LATENCY = (
    "estimate: ~500 ns load-to-use latency of GPU HBM, order of magnitude of published GPU "
    "memory-latency microbenchmarks; not charged per operator by the roofline (streams are "
    "prefetched), used as the extra landing latency of network writes into HBM."
)
_HOPPER_FLOPS = (
    "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022), H100 SXM5 table: dense "
    "FP8 1978.9, FP16/BF16 989.4, TF32 494.7 TFLOPS, INT8 1978.9 TOPS; FP32 (non-tensor) "
    "66.9 TFLOPS. The datasheet prints 3958/1979 TFLOPS 'with sparsity' (2x dense)."
)

#: NVIDIA H100 SXM5; the H200 below is the same package with HBM3e.
_H100: dict[str, Any] = {
    "description": "NVIDIA H100 SXM5 80 GB (Hopper)",
    "peak_flops": {
        "fp8": 1978.9e12,
        "bf16": 989.4e12,
        "fp16": 989.4e12,
        "fp32": 66.9e12,
        "int8": 1978.9e12,
    },
    "tiers": [("hbm", 80e9, 3.35e12, 500e-9)],
    "kernel_launch": 4e-6,
    "injection_bandwidth": 450e9,
    "landing_zone": "hbm",
    "landing_latency": 500e-9,
    "idle_power": 70.0,
    "peak_power": 700.0,
    "price": 30000.0,
    "sources": {
        "peak_flops": _HOPPER_FLOPS,
        "tiers.hbm": (
            "NVIDIA H100 datasheet: 80 GB HBM3, 3.35 TB/s (SXM5). Latency: " + _HBM_LATENCY
        ),
        "kernel_launch": _GPU_LAUNCH,
        "injection_bandwidth": (
            "NVIDIA H100 datasheet: NVLink 900 GB/s bidirectional = 450 GB/s per direction "
            "(18 NVLink4 links x 25 GB/s, see netsim.core.linktypes 'nvlink')."
        ),
        "landing_latency": _HBM_LATENCY,
        "power": (
            "peak: NVIDIA H100 datasheet, max TDP up to 700 W (SXM5). idle: estimate, "
            "~70 W reported by nvidia-smi on idle SXM5 boards."
        ),
        "price": "estimate: ~USD 25-30k street price per H100 SXM5 reported in 2023-2024 press.",
    },
}

CHIP_DATA: dict[str, dict[str, Any]] = {
    "h100": _H100,
    "h200": {
        **_H100,  # the GH100 die, NVLink4 and power envelope of the H100; HBM3e
        "description": "NVIDIA H200 SXM 141 GB (Hopper, HBM3e)",
        "tiers": [("hbm", 141e9, 4.8e12, 500e-9)],
        "price": 35000.0,
        "sources": {
            "peak_flops": (
                "NVIDIA H200 datasheet: same GH100 compute as H100 SXM (FP8 3958 / BF16 1979 "
                "TFLOPS with sparsity, i.e. 1978.9 / 989.4 dense). " + _HOPPER_FLOPS
            ),
            "tiers.hbm": "NVIDIA H200 datasheet: 141 GB HBM3e at 4.8 TB/s. Latency: "
            + _HBM_LATENCY,
            "kernel_launch": _GPU_LAUNCH,
            "injection_bandwidth": "NVIDIA H200 datasheet: NVLink 900 GB/s bidirectional = 450 GB/s per direction.",
            "landing_latency": _HBM_LATENCY,
            "power": "peak: NVIDIA H200 datasheet, up to 700 W (SXM). idle: estimate as H100.",
            "price": "estimate: ~USD 30-40k per H200 reported in 2024 press.",
        },
    },
    "b200": {
        "description": "NVIDIA B200 (Blackwell, HGX B200 configuration at 1000 W)",
        "peak_flops": {
            "fp8": 4.5e15,
            "bf16": 2.25e15,
            "fp16": 2.25e15,
            "fp32": 80e12,
            "int8": 4.5e15,
        },
        "tiers": [("hbm", 180e9, 8e12, 500e-9)],
        "kernel_launch": 4e-6,
        "injection_bandwidth": 900e9,
        "landing_zone": "hbm",
        "landing_latency": 500e-9,
        "idle_power": 100.0,
        "peak_power": 1000.0,
        "price": 40000.0,
        "sources": {
            "peak_flops": (
                "NVIDIA Blackwell datasheet / HGX B200 specifications per GPU at 1000 W: dense "
                "FP8 4.5 PFLOPS, FP16/BF16 2.25 PFLOPS, INT8 4.5 POPS (sparse figures are 2x), "
                "FP32 80 TFLOPS (tabulated by G. Lockwood, glennklockwood.com/garden/processors/B200)."
            ),
            "tiers.hbm": (
                "NVIDIA DGX/HGX B200 specifications: 1,440 GB HBM3e and 64 TB/s for 8 GPUs = "
                "180 GB and 8 TB/s per GPU. Latency: " + _HBM_LATENCY
            ),
            "kernel_launch": _GPU_LAUNCH,
            "injection_bandwidth": (
                "NVIDIA Blackwell: NVLink5 1.8 TB/s bidirectional per GPU = 900 GB/s per "
                "direction (see netsim.core.linktypes 'nvlink5')."
            ),
            "landing_latency": _HBM_LATENCY,
            "power": "peak: HGX B200, 1000 W per GPU. idle: estimate (~10% of TDP, as for H100).",
            "price": "estimate: ~USD 30-40k per B200 reported in 2024 press (NVIDIA CEO interview).",
        },
    },
    "mi300x": {
        "description": "AMD Instinct MI300X (CDNA 3, OAM)",
        "peak_flops": {
            "fp8": 2614.9e12,
            "bf16": 1307.4e12,
            "fp16": 1307.4e12,
            "fp32": 163.4e12,
            "int8": 2614.9e12,
        },
        "tiers": [("hbm", 192e9, 5.3e12, 500e-9)],
        "kernel_launch": 4e-6,
        "injection_bandwidth": 448e9,
        "landing_zone": "hbm",
        "landing_latency": 500e-9,
        "peak_power": 750.0,
        "price": 15000.0,
        "sources": {
            "peak_flops": (
                "AMD Instinct MI300X datasheet: peak dense FP16/BF16 1307.4 TFLOPS, FP8 2614.9 "
                "TFLOPS, INT8 2614.9 TOPS (with sparsity 2x), FP32 matrix 163.4 TFLOPS."
            ),
            "tiers.hbm": "AMD Instinct MI300X datasheet: 192 GB HBM3 at 5.3 TB/s. Latency: "
            + _HBM_LATENCY,
            "kernel_launch": _GPU_LAUNCH,
            "injection_bandwidth": (
                "AMD MI300X datasheet: 7 Infinity Fabric links x 128 GB/s bidirectional "
                "(896 GB/s aggregate) = 448 GB/s per direction."
            ),
            "landing_latency": _HBM_LATENCY,
            "power": "peak: AMD MI300X datasheet, 750 W TBP. idle: not published.",
            "price": "estimate: ~USD 10-15k per MI300X (press reports; Hugging Face hardware page lists MSRP $15k).",
        },
    },
    "tpu-v4": {
        "description": "Google Cloud TPU v4 chip (2 TensorCores)",
        "peak_flops": {"bf16": 275e12, "int8": 275e12},
        "tiers": [("hbm", 32 * 2**30, 1200e9, 500e-9)],
        "kernel_launch": 1e-6,
        "injection_bandwidth": 300e9,
        "landing_zone": "hbm",
        "landing_latency": 500e-9,
        "idle_power": 90.0,
        "peak_power": 192.0,
        "sources": {
            "peak_flops": "Google Cloud TPU v4 documentation: peak compute per chip 275 TFLOPS (bf16 or int8).",
            "tiers.hbm": (
                "Google Cloud TPU v4 documentation: HBM2 32 GiB, 1200 GBps. Latency: "
                + _HBM_LATENCY
            ),
            "kernel_launch": (
                "estimate: XLA compiles the whole step into one program, so per-operator host "
                "launch cost is small; 1 us per fused operator assumed."
            ),
            "injection_bandwidth": (
                "Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for Machine "
                "Learning', ISCA 2023: 6 ICI links x 50 GB/s per direction = 300 GB/s."
            ),
            "landing_latency": _HBM_LATENCY,
            "power": "Google Cloud TPU v4 documentation: measured min/mean/max power 90/170/192 W.",
            "price": "not sold; cloud rental only (None).",
        },
    },
    "tpu-v5p": {
        "description": "Google Cloud TPU v5p chip",
        "peak_flops": {"bf16": 459e12, "fp8": 459e12, "int8": 918e12},
        "tiers": [("hbm", 95e9, 2765e9, 500e-9)],
        "kernel_launch": 1e-6,
        "injection_bandwidth": 600e9,
        "landing_zone": "hbm",
        "landing_latency": 500e-9,
        "sources": {
            "peak_flops": (
                "Google Cloud TPU v5p documentation: peak compute per chip 459 TFLOPS bf16 and "
                "459 TFLOPS fp8; int8 918 TOPS (Google Cloud blog announcing v5p, Dec 2023)."
            ),
            "tiers.hbm": (
                "Google Cloud TPU v5p documentation: HBM2e 95 GB, 2765 GBps (a later revision "
                "of the page writes 95 GiB). Latency: " + _HBM_LATENCY
            ),
            "kernel_launch": "estimate: as TPU v4 (whole-program XLA compilation).",
            "injection_bandwidth": (
                "Google Cloud TPU v5p documentation: inter-chip interconnect 4800 Gbps per chip "
                "(1200 GBps bidirectional) = 600 GB/s per direction."
            ),
            "landing_latency": _HBM_LATENCY,
            "power": "not published (None).",
            "price": "not sold; cloud rental only (None).",
        },
    },
    "groq-lpu": {
        "description": "Groq LPU / GroqChip TSP (SRAM only, 14 nm)",
        "peak_flops": {"fp16": 188e12, "int8": 750e12},
        "tiers": [("sram", 230e6, 80e12, 0.0)],
        "kernel_launch": 0.0,
        "injection_bandwidth": 240e9,
        "landing_zone": "sram",
        "landing_latency": 0.0,
        "peak_power": 300.0,
        "price": 20000.0,
        "sources": {
            "peak_flops": (
                "Groq LPU product brief (as reported by TechPowerUp, Feb 2024): 750 TOPS INT8, "
                "188 TFLOPS FP16 (dense; no sparsity)."
            ),
            "tiers.sram": (
                "Groq LPU product brief: 230 MB on-die SRAM at 80 TB/s. Latency: statically "
                "scheduled streams, not modelled (0)."
            ),
            "kernel_launch": (
                "Abts et al., 'Think Fast: A Tensor Streaming Processor (TSP) for Accelerating "
                "Deep Learning Workloads', ISCA 2020: the compiler schedules every operation "
                "statically; no per-kernel launch (0)."
            ),
            "injection_bandwidth": (
                "Linley Newsletter 'Groq Gets Connected' (Nov 2020, D. Abts at Linley Fall "
                "Processor Conference): 16 chip-to-chip links x 4 lanes x 30 Gb/s = 240 GB/s "
                "per direction (480 GB/s total)."
            ),
            "landing_latency": "lands in SRAM: no extra latency (0).",
            "power": "peak: ~300 W per TSP (TechSpot, 'Groq launches first AI accelerator card', 2020). idle: not published.",
            "price": "estimate: GroqCard listed at ~USD 20k by a distributor (press reports, 2024).",
        },
    },
    "wse-3": {
        "description": "Cerebras WSE-3 wafer-scale engine (CS-3 system)",
        "peak_flops": {"fp16": 125e15},
        "tiers": [("sram", 44e9, 21e15, 0.0)],
        "kernel_launch": 0.0,
        "injection_bandwidth": 150e9,
        "landing_zone": "sram",
        "landing_latency": 0.0,
        "peak_power": 23000.0,
        "price": 2.5e6,
        "sources": {
            "peak_flops": (
                "Cerebras press release 'Cerebras Systems Unveils ... WSE-3' (13 Mar 2024): "
                "125 PFLOPS peak AI (FP16). Cerebras does not say whether this counts "
                "sparsity; used as-is, so it may be an upper bound on dense FP16."
            ),
            "tiers.sram": (
                "Cerebras WSE-3 press release (13 Mar 2024): 44 GB on-chip SRAM, 21 PB/s memory "
                "bandwidth. Latency: on-wafer SRAM, not modelled (0)."
            ),
            "kernel_launch": "estimate: weight-stationary dataflow, no per-kernel host launch (0).",
            "injection_bandwidth": (
                "estimate: 12 x 100 GbE system I/O = 150 GB/s per direction, as on the CS-2 "
                "(Cerebras CS-2 datasheet); CS-3 external I/O not verified."
            ),
            "landing_latency": "lands in SRAM: no extra latency (0).",
            "power": "estimate: ~23 kW per CS-3 system (third-party reports); whole system, not the wafer alone.",
            "price": "estimate: ~USD 2-3M per CS-3 system (third-party reports).",
        },
    },
    "hbf-inference": {
        "description": (
            "Hypothetical inference chip with one High Bandwidth Flash stack for weights and one "
            "HBM stack for KV cache and activations (after Ma & Patterson 2026)"
        ),
        "peak_flops": {"fp8": 1978.9e12, "bf16": 989.4e12, "fp16": 989.4e12, "int8": 1978.9e12},
        "tiers": [("hbm", 48e9, 1638.4e9, 500e-9), ("hbf", 512e9, 1638.4e9, 20e-6)],
        "kernel_launch": 4e-6,
        "injection_bandwidth": 450e9,
        "landing_zone": "hbm",
        "landing_latency": 500e-9,
        "sources": {
            "peak_flops": "estimate: assumed H100-class compute (hypothetical chip). "
            + _HOPPER_FLOPS,
            "tiers.hbf": (
                "Ma & Patterson, 'Challenges and Research Directions for Large Language Model "
                "Inference Hardware', arXiv:2601.05047 (Jan 2026): HBF offers ~10x HBM capacity "
                "with HBM-like bandwidth; one stack taken as 512 GB at 1638.4 GB/s (2048-bit "
                "interface at 6.4 Gb/s). The 512 GB/stack matches SanDisk's HBF disclosure "
                "(8 stacks = 4 TB) and ~1.6 TB/s read bandwidth is SanDisk's target "
                "(SemiEngineering, 'Flash Getting Stacked High-Bandwidth Version', 2026). "
                "Latency: estimate 20 us (NAND page read time), not charged per operator."
            ),
            "tiers.hbm": (
                "estimate: one HBM stack with the same interface bandwidth as the HBF stack "
                "(1638.4 GB/s) and 48 GB (16-high HBM3E, SK hynix), so HBF gives ~10x its "
                "capacity as the paper states. Latency: " + _HBM_LATENCY
            ),
            "kernel_launch": _GPU_LAUNCH,
            "injection_bandwidth": "estimate: H100-class scale-up port, 450 GB/s per direction.",
            "landing_latency": _HBM_LATENCY,
            "power": "hypothetical chip: unknown (None).",
            "price": "hypothetical chip: unknown (None).",
        },
    },
}
