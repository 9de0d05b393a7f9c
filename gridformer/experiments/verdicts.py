"""Verdicts from numbers: confidence intervals over seeds and the comparisons claims rest on.

A metric summarised over ``n`` seeds (``{"mean", "sd", "values"}``) gets the 95% Student-t
interval of its mean, ``mean +- t(0.975, n - 1) * sd / sqrt(n)``. A claim "A beats B" then

- **holds** when A's interval lies wholly above B's;
- **does not hold** when A's interval lies wholly below B's, or when the two means differ by
  less than a stated ``margin`` and both intervals are narrower than it (no difference worth
  the name);
- is **inconclusive** otherwise (the intervals overlap), and always with a single seed, which
  gives no interval.

A claim "the metric is above (or below) a value" (:func:`compare_to_value`) reads the metric's
interval against that value the same way. With 3 seeds the interval is mean ± 2.48 sd, so a
claim holds only when the gap is large against the spread between seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gridformer.experiments.harness import Verdict

__all__ = ["at", "compare", "compare_above", "compare_to_value", "fmt", "interval"]


def at(summary: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Point ``index`` of a curve summary, as a scalar summary."""
    values = [row[index] for row in summary["values"]]
    sd = summary["sd"][index] if summary["sd"] is not None else None
    return {"mean": summary["mean"][index], "sd": sd, "values": values}


def interval(summary: Mapping[str, Any], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds; None with fewer than two finite values."""
    from scipy import stats

    values = [v for v in summary["values"] if v is not None and math.isfinite(v)]
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def fmt(summary: Mapping[str, Any], spec: str = ".3f") -> str:
    """``"0.812 ± 0.021"`` (mean ± sd over seeds), or the single value."""
    mean, sd = summary["mean"], summary["sd"]
    if mean is None:
        return "n/a"
    return f"{mean:{spec}}" if sd is None else f"{mean:{spec}} ± {sd:{spec}}"


def compare_above(what: str, a_name: str, a: Mapping[str, Any], b_name: str,
                  b: Mapping[str, Any], *, margin: float, spec: str = ".3f") -> Verdict:
    """Verdict on "``a`` is higher than ``b``" (see the module docstring for the rule).

    The text reads like ``"occluded accuracy: GridFormer 0.812 ± 0.021 vs CNN 0.520 ± 0.030
    (95% intervals [0.76, 0.86] and [0.45, 0.59]) — the claim holds"``.
    """
    return compare(what, a_name, a, b_name, b, margin=margin, spec=spec, better="higher")


def compare(what: str, a_name: str, a: Mapping[str, Any], b_name: str, b: Mapping[str, Any],
            *, margin: float, better: str = "higher", spec: str = ".3f") -> Verdict:
    """Verdict on "``a`` is better than ``b``", ``better`` being ``"higher"`` or ``"lower"``."""
    if better not in ("higher", "lower"):
        msg = f"better={better!r} must be 'higher' or 'lower'"
        raise ValueError(msg)
    ia, ib = interval(a), interval(b)
    head = f"{what}: {a_name} {fmt(a, spec)} vs {b_name} {fmt(b, spec)}"
    if ia is None or ib is None:
        return Verdict("inconclusive",
                       f"{head} — inconclusive (one seed gives no interval; use --seeds 3 or "
                       f"more)")
    ranges = f"(95% intervals [{ia[0]:.3g}, {ia[1]:.3g}] and [{ib[0]:.3g}, {ib[1]:.3g}])"
    a_better = ia[0] > ib[1] if better == "higher" else ia[1] < ib[0]
    b_better = ia[1] < ib[0] if better == "higher" else ia[0] > ib[1]
    if a_better:
        return Verdict("holds", f"{head} {ranges} — the claim holds")
    if b_better:
        return Verdict("does not hold",
                       f"{head} {ranges}: {b_name} is better — the claim does not hold")
    widths = max(ia[1] - ia[0], ib[1] - ib[0]) / 2
    if abs(a["mean"] - b["mean"]) < margin and widths < margin:
        return Verdict("does not hold",
                       f"{head} {ranges}: no difference beyond {margin:g} — the claim does not "
                       f"hold")
    return Verdict("inconclusive", f"{head} {ranges}: the intervals overlap — inconclusive")


def compare_to_value(what: str, summary: Mapping[str, Any], value: float, *, margin: float,
                     better: str = "higher", spec: str = ".3f") -> Verdict:
    """Verdict on "the metric is above (``better="higher"``) or below ``value``": holds when its
    interval lies wholly on the claimed side, does not hold when wholly on the other side or
    within ``margin`` of ``value`` (mean and half-width), inconclusive otherwise."""
    if better not in ("higher", "lower"):
        msg = f"better={better!r} must be 'higher' or 'lower'"
        raise ValueError(msg)
    side = ">" if better == "higher" else "<"
    head = f"{what} {fmt(summary, spec)} (claim: {side} {value:g})"
    iv = interval(summary)
    if iv is None:
        return Verdict("inconclusive",
                       f"{head} — inconclusive (one seed gives no interval; use --seeds 3 or "
                       f"more)")
    ranges = f"(95% interval [{iv[0]:.3g}, {iv[1]:.3g}])"
    above, below = iv[0] > value, iv[1] < value
    if (above and better == "higher") or (below and better == "lower"):
        return Verdict("holds", f"{head} {ranges} — the claim holds")
    if above or below:
        return Verdict("does not hold", f"{head} {ranges} — the claim does not hold")
    if abs(summary["mean"] - value) < margin and (iv[1] - iv[0]) / 2 < margin:
        return Verdict("does not hold",
                       f"{head} {ranges}: within {margin:g} of {value:g} — the claim does not "
                       f"hold")
    return Verdict("inconclusive", f"{head} {ranges}: the interval contains {value:g} — "
                                   f"inconclusive")
