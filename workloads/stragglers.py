"""Stragglers in decode-time collectives: delay models, wait vs. substitute, tail metrics.

In decode, every layer ends in a collective (an all-reduce for tensor parallelism, an
all-to-all for MoE), so one slow chip delays every token. This module draws per-step
delays, applies a completion policy to one reduction step, computes the numerical effect of
substituting late contributions, and summarises tail latencies over many steps.

Straggler grammar (``--stragglers``)
------------------------------------
Components joined by ``+``; delays take a time unit (``50us``, ``1.5ms``, ``200ns``; a bare
number is seconds):

``none``
    no extra delay.
``chip:FRACTION:DELAY``
    a seeded set of ``round(FRACTION * chips)`` chips (the same set every step) is late by
    ``DELAY`` at every step.
``exp:MEAN``
    every chip's delay at every step is drawn from an exponential with mean ``MEAN``.
``lognormal:MEDIAN:SIGMA``
    every chip's delay is lognormal with median ``MEDIAN`` (``mu = ln MEDIAN``) and shape
    ``SIGMA`` (standard deviation of ``ln delay``, dimensionless).
``link:FRACTION:DELAY``
    a seeded set of ``round(FRACTION * links)`` links is slower by ``DELAY`` per traversal;
    drawn with ``target="link"`` and applied to edge latencies by the caller.

Example: ``chip:0.01:50us+exp:1us`` (1 % of chips 50 us late, plus exponential jitter).

Policies (``--straggler-policy``)
---------------------------------
``wait``
    a reduction step completes when the last contribution arrives (``max`` of arrivals).
``substitute:DEADLINE[:zeros|previous]``
    the step completes at the last arrival if all arrive within ``DEADLINE`` of the
    reference time, otherwise at ``reference + DEADLINE``; the late contributions are
    replaced by zeros or by the same chip's contribution from the previous token. The
    reference is the first arrival unless the caller gives ``start``.

Substitution of late contributions for straggler tolerance in LLM inference is attributed in
the netsim issue to X. Ma and D. Patterson, "Challenges and Research Directions for Large
Language Model Inference Hardware", arXiv:2601.05047, January 2026 (which identifies
interconnect latency as a primary decode bottleneck). Only the abstract of that paper could be
checked while writing this module; verify the section before quoting it for the substitution
idea. The classic reference for tolerating stragglers by not waiting is Dean & Barroso,
"The Tail at Scale", CACM 56(2), 2013.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from netsim.core.errors import ConfigError
from netsim.core.units import parse_time
from netsim.core.validate import require_choice, require_int
from workloads.spec_fields import spec_number

__all__ = [
    "POLICY_KINDS",
    "STRAGGLER_KINDS",
    "SUBSTITUTE_MODES",
    "Policy",
    "StragglerComponent",
    "StragglerSpec",
    "apply_policy",
    "draw_delays",
    "parse_policy",
    "parse_stragglers",
    "straggler_report",
    "substitute_reduce",
]

STRAGGLER_KINDS = ("none", "chip", "exp", "lognormal", "link")
POLICY_KINDS = ("wait", "substitute")
SUBSTITUTE_MODES = ("zeros", "previous")
_ARITY = {"none": 0, "chip": 2, "exp": 1, "lognormal": 2, "link": 2}


@dataclass(frozen=True)
class StragglerComponent:
    """One term of a straggler spec; times in seconds.

    Attributes
    ----------
    kind : str
        ``chip``, ``exp``, ``lognormal`` or ``link``.
    fraction : float
        Fraction of chips/links that are slow (``chip``, ``link``).
    delay : float
        Fixed delay (``chip``, ``link``), mean (``exp``) or median (``lognormal``), seconds.
    sigma : float
        Lognormal shape (``lognormal``).
    """

    kind: str
    fraction: float = 0.0
    delay: float = 0.0
    sigma: float = 0.0

    @property
    def target(self) -> str:
        """``"link"`` for link delays, else ``"chip"``."""
        return "link" if self.kind == "link" else "chip"


@dataclass(frozen=True)
class StragglerSpec:
    """A parsed straggler spec: a sum of independent components (empty for ``none``)."""

    components: tuple[StragglerComponent, ...] = ()
    text: str = "none"


def parse_stragglers(text: str | StragglerSpec) -> StragglerSpec:
    """Parse a straggler spec such as ``chip:0.01:50us+exp:1us`` (see module docstring).

    Raises
    ------
    ConfigError
        On an unknown kind, a wrong number of fields, a fraction outside [0, 1], a negative
        time or a non-positive lognormal median.

    Examples
    --------
    >>> c = parse_stragglers("chip:0.25:50us").components[0]
    >>> c.kind, c.fraction, round(c.delay * 1e6, 9)
    ('chip', 0.25, 50.0)
    """
    if isinstance(text, StragglerSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"stragglers: expected a spec such as none or exp:5us, got {text!r}")
    comps: list[StragglerComponent] = []
    for term in text.strip().split("+"):
        kind, *fields = (p.strip() for p in term.split(":"))
        kind = kind.lower()
        if kind not in _ARITY:
            raise ConfigError(
                f"stragglers: kind must be one of {', '.join(STRAGGLER_KINDS)}, got {text!r}"
            )
        if len(fields) != _ARITY[kind]:
            forms = {
                "none": "none",
                "chip": "chip:FRACTION:DELAY",
                "exp": "exp:MEAN",
                "lognormal": "lognormal:MEDIAN:SIGMA",
                "link": "link:FRACTION:DELAY",
            }
            raise ConfigError(f"stragglers: expected {forms[kind]}, got {text!r}")
        if kind == "none":
            continue
        if kind in ("chip", "link"):
            comps.append(
                StragglerComponent(
                    kind,
                    fraction=spec_number(
                        fields[0],
                        f"stragglers: FRACTION must be a number in [0, 1], got {text!r}",
                        hi=1.0,
                    ),
                    delay=parse_time(fields[1], "stragglers"),
                )
            )
        elif kind == "exp":
            comps.append(StragglerComponent(kind, delay=parse_time(fields[0], "stragglers")))
        else:
            median = parse_time(fields[0], "stragglers", allow_zero=False)
            sigma = spec_number(fields[1], f"stragglers: SIGMA must be a number >= 0, got {text!r}")
            comps.append(StragglerComponent(kind, delay=median, sigma=sigma))
    return StragglerSpec(tuple(comps), text.strip())


def draw_delays(
    spec: str | StragglerSpec,
    chips: int,
    steps: int,
    rng: np.random.Generator | int | None = None,
    *,
    target: str = "chip",
) -> np.ndarray:
    """Draw extra delays in seconds, an array ``[steps, chips]``.

    Only components whose target matches ``target`` contribute (with ``target="link"``,
    ``chips`` counts links). Deterministic for a given seed.

    Raises
    ------
    ConfigError
        On a bad spec or non-positive sizes.
    """
    spec = parse_stragglers(spec)
    n = require_int("chips", chips, min=1)
    steps = require_int("steps", steps, min=1)
    require_choice("target", target, ("chip", "link"))
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = np.zeros((steps, n))
    for c in spec.components:
        if c.target != target:
            continue
        if c.kind in ("chip", "link"):
            slow = g.choice(n, size=round(c.fraction * n), replace=False)
            out[:, slow] += c.delay
        elif c.kind == "exp":
            out += g.exponential(c.delay, size=(steps, n)) if c.delay > 0 else 0.0
        else:
            out += g.lognormal(math.log(c.delay), c.sigma, size=(steps, n))
    return out


@dataclass(frozen=True)
class Policy:
    """A parsed completion policy.

    Attributes
    ----------
    kind : str
        ``wait`` or ``substitute``.
    deadline : float
        Seconds after the reference time (``substitute``).
    mode : str
        ``zeros`` or ``previous`` (``substitute``).
    """

    kind: str
    deadline: float = math.inf
    mode: str = "zeros"


def parse_policy(text: str | Policy) -> Policy:
    """Parse ``wait`` or ``substitute:DEADLINE[:zeros|previous]``.

    Examples
    --------
    >>> p = parse_policy("substitute:20us:previous")
    >>> p.kind, round(p.deadline * 1e6, 9), p.mode
    ('substitute', 20.0, 'previous')
    """
    if isinstance(text, Policy):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"straggler-policy: expected wait or substitute:DEADLINE, got {text!r}")
    kind, *fields = (p.strip() for p in text.strip().split(":"))
    if kind == "wait" and not fields:
        return Policy("wait")
    if kind == "substitute" and 1 <= len(fields) <= 2:
        deadline = parse_time(fields[0], "straggler-policy")
        mode = fields[1] if len(fields) == 2 else "zeros"
        require_choice("straggler-policy mode", mode, SUBSTITUTE_MODES)
        return Policy("substitute", deadline, mode)
    raise ConfigError(
        f"straggler-policy: expected wait or substitute:DEADLINE[:zeros|previous], got {text!r}"
    )


def apply_policy(
    arrival_times: np.ndarray, policy: str | Policy, *, start: float | np.ndarray | None = None
) -> tuple[np.ndarray | float, np.ndarray]:
    """Completion time and substituted contributions of reduction steps.

    Parameters
    ----------
    arrival_times : array_like
        Arrival time of each contribution, seconds; the last axis indexes contributions
        (``[chips]`` for one step, ``[steps, chips]`` for many).
    policy : str or Policy
        ``wait`` or ``substitute:DEADLINE[:mode]``.
    start : float or array, optional
        Reference time of the deadline (per step); default: the first arrival.

    Returns
    -------
    completion : float or ndarray
        Completion time of each step.
    substituted : ndarray of bool
        Same shape as ``arrival_times``: contributions that missed the deadline.
    """
    pol = parse_policy(policy)
    t = np.asarray(arrival_times, dtype=float)
    if t.ndim == 0 or t.shape[-1] == 0:
        raise ConfigError(f"arrival_times: need at least one contribution, got shape {t.shape}")
    last = t.max(axis=-1)
    if pol.kind == "wait":
        mask = np.zeros(t.shape, dtype=bool)
        done = last
    else:
        ref = t.min(axis=-1) if start is None else np.broadcast_to(start, last.shape)
        cutoff = ref + pol.deadline
        mask = t > np.asarray(cutoff)[..., None]
        done = np.where(mask.any(axis=-1), cutoff, last)
    return (float(done) if np.ndim(done) == 0 else done), mask


def substitute_reduce(
    contributions: np.ndarray,
    previous: np.ndarray | None,
    mask: np.ndarray,
    mode: str = "zeros",
) -> np.ndarray:
    """Sum contributions over axis 0, replacing the masked ones.

    Parameters
    ----------
    contributions : ndarray
        ``[chips, ...]`` this token's contributions.
    previous : ndarray or None
        ``[chips, ...]`` the previous token's contributions (needed for ``mode="previous"``).
    mask : ndarray of bool
        ``[chips]`` True where the contribution was substituted.
    mode : str
        ``zeros`` (drop it) or ``previous`` (use the previous token's value).

    Returns
    -------
    ndarray
        The reduced result; equals ``contributions.sum(axis=0)`` when nothing is masked.
    """
    require_choice("mode", mode, SUBSTITUTE_MODES)
    x = np.asarray(contributions, dtype=float)
    m = np.asarray(mask, dtype=bool)
    if m.shape != x.shape[:1]:
        raise ConfigError(f"mask: need one flag per contribution ({x.shape[0]}), got {m.shape}")
    keep = x[~m].sum(axis=0)
    if mode == "zeros":
        return keep
    if previous is None:
        raise ConfigError("previous: required for mode='previous', got None")
    prev = np.asarray(previous, dtype=float)
    if prev.shape != x.shape:
        raise ConfigError(f"previous: must have shape {x.shape}, got {prev.shape}")
    return keep + prev[m].sum(axis=0)


def straggler_report(
    completion_times: Sequence[float] | np.ndarray,
    substituted: np.ndarray | None = None,
    *,
    percentiles: Sequence[float] = (50.0, 99.0, 99.9),
) -> dict[str, float]:
    """Summarise many steps: percentiles of completion time and substitution rates.

    Returns
    -------
    dict
        ``p50``, ``p99``, ``p99.9`` (keys ``p{q:g}``), ``mean`` and ``max`` in seconds,
        ``steps``; with ``substituted`` (``[steps, chips]``) also ``substituted_fraction``
        (of all contributions) and ``steps_with_substitution`` (fraction of steps).
    """
    t = np.asarray(completion_times, dtype=float).ravel()
    if t.size == 0:
        raise ConfigError("completion_times: need at least one step, got none")
    out: dict[str, float] = {f"p{q:g}": float(np.percentile(t, q)) for q in percentiles}
    out.update(mean=float(t.mean()), max=float(t.max()), steps=float(t.size))
    if substituted is not None:
        s = np.asarray(substituted, dtype=bool)
        out["substituted_fraction"] = float(s.mean())
        out["steps_with_substitution"] = float(s.reshape(s.shape[0], -1).any(axis=1).mean())
    return out
