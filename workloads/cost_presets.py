"""Energy, price and carbon constants for the cost-per-token model, each with its source.

Every entry is a :class:`Constant` (value, unit, source). Numbers marked "assumption" have
no published figure behind them; override them for a study (see :mod:`workloads.cost`).
Energies are per FLOP or per bit moved; a FLOP is one multiply *or* one add, so one
fused multiply-add is 2 FLOPs.

The compute and SRAM/DRAM numbers are Horowitz's 45 nm table: modern nodes are several
times lower, so treat them as an upper bound for compute and on-chip memory energy.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ECONOMICS",
    "FLOP_PJ",
    "LINK_PJ_PER_BIT",
    "MEMORY_PJ_PER_BIT",
    "Constant",
]

_HOROWITZ = (
    "M. Horowitz, 'Computing's Energy Problem (and what we can do about it)', ISSCC 2014, "
    "energy table for 45 nm at 0.9 V"
)


@dataclass(frozen=True, slots=True)
class Constant:
    """One documented constant.

    Attributes
    ----------
    value : float
        The number, in ``unit``.
    unit : str
        Its unit.
    source : str
        Where it comes from, or ``"assumption: ..."``.
    """

    value: float
    unit: str
    source: str


FLOP_PJ: dict[str, Constant] = {
    "fp32": Constant(
        2.3, "pJ/FLOP", f"{_HOROWITZ}: 32b FP mult 3.7 pJ + 32b FP add 0.9 pJ = 4.6 pJ per FMA"
    ),
    "fp16": Constant(
        0.75,
        "pJ/FLOP",
        f"{_HOROWITZ}: 16b FP mult 1.1 pJ + 16b FP add 0.4 pJ = 1.5 pJ per FMA (the 'HFMA 1.5pJ' "
        "of W. Dally, Hot Chips 2023 keynote)",
    ),
    "bf16": Constant(0.75, "pJ/FLOP", "assumption: same as fp16 (same multiplier width class)"),
    "fp8": Constant(
        0.375, "pJ/FLOP", "assumption: half of fp16 (no 45 nm fp8 figure in Horowitz 2014)"
    ),
    "int8": Constant(
        0.115, "pJ/FLOP", f"{_HOROWITZ}: 8b mult 0.2 pJ + 8b add 0.03 pJ = 0.23 pJ per MAC"
    ),
}

MEMORY_PJ_PER_BIT: dict[str, Constant] = {
    "sram": Constant(
        1.56,
        "pJ/bit",
        f"{_HOROWITZ}: 1 MB cache, 100 pJ per 64-bit access; matches '50pJ/word' (32-bit) "
        "on-chip SRAM in W. Dally, Hot Chips 2023 keynote",
    ),
    "hbm": Constant(
        3.97,
        "pJ/bit",
        "M. O'Connor et al., 'Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth "
        "Systems', MICRO 2017: 'the energy to access a bit in HBM2 is approximately 3.97 pJ/bit' "
        "(activation + on-die movement + I/O); HBM3/3E assumed equal",
    ),
    "hbf": Constant(
        6.0,
        "pJ/bit",
        "assumption: no published High Bandwidth Flash energy per bit (SanDisk HBF announcements "
        "2025 give capacity and bandwidth only); HBM-like interposer I/O plus NAND sensing",
    ),
    "ddr": Constant(
        20.0,
        "pJ/bit",
        f"{_HOROWITZ}: DRAM 1.3-2.6 nJ per 64-bit access (20-40 pJ/bit); low end, as the "
        "'640 pJ per 32-bit word' LPDDR figure quoted in W. Dally, Hot Chips 2023",
    ),
}

LINK_PJ_PER_BIT: dict[str, Constant] = {
    "nvlink": Constant(
        1.3,
        "pJ/bit",
        "NVIDIA, Grace Hopper Superchip technical blog (Nov 2022): NVLink-C2C 'only uses 1.3 "
        "picojoules per bit'; assumption that board/switch NVLink is similar (likely higher)",
    ),
    "nvlink5": Constant(1.3, "pJ/bit", "assumption: as nvlink"),
    "ib": Constant(
        20.0,
        "pJ/bit",
        "derived: 800G optical modules draw 13-18 W (vendor FAQs); ~16 W / (2 x 800 Gb/s, both "
        "directions) = 10 pJ/bit per module, two modules per link; switch ASIC not included",
    ),
    "ethernet": Constant(20.0, "pJ/bit", "derived: as ib (same 800G optics)"),
    "ici": Constant(
        5.0, "pJ/bit", "assumption: long-reach electrical SerDes class; no published TPU ICI figure"
    ),
    "wafer": Constant(
        0.3,
        "pJ/bit",
        "Y. Nishi et al., 'A 0.297-pJ/bit 50.4-Gb/s/wire ... Transceiver for Die-to-Die "
        "Interface in 5-nm CMOS', IEEE JSSC 58(4), 2023 (short-reach on-package link as proxy)",
    ),
    "wafer-die": Constant(0.3, "pJ/bit", "assumption: as wafer (short reach across a die seam)"),
}

ECONOMICS: dict[str, Constant] = {
    "electricity_usd_per_kwh": Constant(
        0.0806,
        "USD/kWh",
        "U.S. EIA, average retail price of electricity to industrial customers, 2023: "
        "8.06 cents/kWh",
    ),
    "grid_g_per_kwh": Constant(
        367.0,
        "gCO2/kWh",
        "U.S. EIA FAQ 'How much carbon dioxide is produced per kilowatthour of U.S. electricity "
        "generation?': 2023, 0.81 lb CO2/kWh = 367 g/kWh (utility-scale generation, CO2 only)",
    ),
    "pue": Constant(
        1.58,
        "1",
        "Uptime Institute Global Data Center Survey 2023: industry average annual PUE 1.58",
    ),
    "pue_hyperscale": Constant(
        1.10,
        "1",
        "Google fleet-wide PUE ~1.1 (Google data-center efficiency page; CNBC, 13 Apr 2022)",
    ),
    "lifetime_years": Constant(
        5.0, "years", "assumption: typical accelerator server depreciation period (4-6 years)"
    ),
    "utilisation": Constant(
        1.0, "1", "assumption: chips busy all the time (an upper bound on tokens per dollar)"
    ),
}
