"""What if we spent this? Leads, value and profit per channel of a spend plan, under the fitted response curves.

A plan names spend per period for some channels (the others stay at their current spend); every figure comes with
its central 80% bootstrap interval and its change against the current spend, and a channel is flagged when the
plan leaves the spend range its periods ever saw (the curve is then extrapolated).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from marketing.explain import period_word
from marketing.response_curves import INTERVAL, ChannelCurve, ResponseCurves, finite_or_none

_Q = ((1 - INTERVAL) / 2, (1 + INTERVAL) / 2)


def check_plan(curves: ResponseCurves, plan: Mapping[str, float]) -> None:
    """ValueError naming what is wrong with a plan: unknown channels, negative or non-numeric spend, no curve."""
    unknown = sorted(set(plan) - set(curves.curves))
    if unknown:
        raise ValueError(
            f"the plan names channels without spend history: {unknown}; known channels: {sorted(curves.curves)}"
        )
    bad = sorted(n for n, s in plan.items() if not isinstance(s, int | float) or not np.isfinite(s) or s < 0)
    if bad:
        raise ValueError(f"the plan's spend must be a non-negative amount per period: {bad}")
    blind = sorted(n for n, s in plan.items() if not curves.curves[n].fitted and s != curves.curves[n].current_spend)
    if blind:
        reasons = "; ".join(f"{n}: {curves.curves[n].reason or 'no curve'}" for n in blind)
        raise ValueError(f"no response curve to answer for {blind} ({reasons})")


def _figures(name: str, point_now: float, point: float, draws_now: np.ndarray, draws: np.ndarray) -> dict:
    """One quantity at the plan and its change against now, each with its 80% interval (paired draws)."""

    def interval(x: np.ndarray) -> list[float | None]:
        x = x[np.isfinite(x)]
        return [float(v) for v in np.quantile(x, _Q)] if len(x) else [None, None]

    return {
        f"{name}_current": finite_or_none(point_now),
        name: finite_or_none(point),
        f"{name}_interval": interval(draws),
        f"{name}_change": finite_or_none(point - point_now),
        f"{name}_change_interval": interval(draws - draws_now),
    }


def _boot_leads(curve: ChannelCurve, spend: float) -> np.ndarray:
    """Leads per period under every bootstrap draw (the draws' values over their value per lead)."""
    per_lead = np.asarray(curve.boot_value_per_lead, dtype=float)
    values = np.asarray(curve.boot_values(spend), dtype=float)
    return np.divide(values, per_lead, out=np.full_like(values, np.nan), where=per_lead != 0)


def _channel(curve: ChannelCurve, spend: float, margin: float | None) -> tuple[dict, dict]:
    """One channel's row and its draws {quantity: (now, plan)} for the totals."""
    cur = float(curve.current_spend)
    low, high = float(curve.spend_min), float(curve.spend_max)
    row = {
        "channel": curve.channel,
        "status": curve.status,
        "reason": curve.reason,
        "current_spend": cur,
        "spend": float(spend),
        "spend_change": float(spend - cur),
        "spend_range": [low, high],
        "outside_seen_range": bool(spend < low - 1e-9 or spend > high + 1e-9),
    }
    if not curve.fitted:
        return row, {}
    draws = {
        "leads": (_boot_leads(curve, cur), _boot_leads(curve, spend)),
        "value": (curve.boot_values(cur), curve.boot_values(spend)),
    }
    points = {"leads": (curve.leads(cur), curve.leads(spend)), "value": (curve.value(cur), curve.value(spend))}
    if margin is not None:
        draws["profit"] = tuple(margin * v - s for v, s in zip(draws["value"], (cur, spend), strict=True))
        points["profit"] = tuple(margin * v - s for v, s in zip(points["value"], (cur, spend), strict=True))
    for key, (now, new) in points.items():
        row |= _figures(key, float(now), float(new), *draws[key])
    return row, {key: (float(points[key][0]), float(points[key][1]), *draws[key]) for key in points}


def what_if(curves: ResponseCurves, plan: Mapping[str, float], margin: float | None = None) -> dict:
    """Leads, value (and with `margin`, profit = margin x value - spend) per period of a spend plan.

    Channels the plan does not name stay at their current spend. Totals add the channels with a curve (a channel
    without one adds its spend only). Raises ValueError for unknown channels, a negative spend, a plan for a
    channel without a curve, or a margin that is not positive.
    """
    if margin is not None and not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive share of a lead's value, got {margin}")
    check_plan(curves, plan)
    rows, totals = [], {}
    for name in sorted(curves.curves):
        curve = curves.curves[name]
        row, parts = _channel(curve, float(plan.get(name, curve.current_spend)), margin)
        rows.append(row)
        for key, (now, new, draws_now, draws) in parts.items():
            if key != "profit":
                acc = totals.setdefault(key, [0.0, 0.0, 0.0, 0.0])
                acc[:] = [acc[0] + now, acc[1] + new, acc[2] + draws_now, acc[3] + draws]
    spend_now, spend = sum(r["current_spend"] for r in rows), sum(r["spend"] for r in rows)
    if margin is not None and "value" in totals:  # every channel's spend counts, with a curve or not
        now, new, draws_now, draws = totals["value"]
        totals["profit"] = [margin * now - spend_now, margin * new - spend, margin * draws_now - spend_now]
        totals["profit"].append(margin * draws - spend)
    total = {"current_spend": spend_now, "spend": spend, "spend_change": spend - spend_now}
    for key, (now, new, draws_now, draws) in totals.items():
        total |= _figures(key, now, new, np.atleast_1d(draws_now), np.atleast_1d(draws))
    return {
        "as_of": curves.as_of.isoformat(),
        "period_days": curves.period_days,
        "plan": {k: float(v) for k, v in plan.items()},
        "margin": margin,
        "interval": INTERVAL,
        "channels": rows,
        "total": total,
        "outside_seen_range": sorted(r["channel"] for r in rows if r["outside_seen_range"]),
    }


def format_what_if(result: dict) -> str:
    """A fixed-width table of the plan per channel and in total (80% intervals), then the range warnings."""
    period = period_word(result["period_days"])
    profit = result["margin"] is not None
    head = f"{'channel':<12}{'current':>9}{'plan':>9}{'leads':>8}{'change':>8}{'value':>9}{'change (80%)':>26}"
    head += f"{'profit':>9}{'change (80%)':>26}" if profit else ""
    lines = [
        f"What if, per {period} as of {result['as_of'][:10]}" + (f", margin {result['margin']:g}" if profit else "")
    ]
    lines.append(head)
    for r in [*result["channels"], {"channel": "total", **result["total"]}]:
        line = f"{r['channel'][:11]:<12}{r['current_spend']:>9,.0f}{r['spend']:>9,.0f}"
        if "leads" not in r:
            lines.append(line + "   no curve: " + (r.get("reason") or "insufficient evidence"))
            continue
        line += f"{r['leads']:>8,.1f}{r['leads_change']:>+8,.1f}{r['value']:>9,.0f}  {_change(r, 'value'):>24}"
        line += f"{r['profit']:>9,.0f}  {_change(r, 'profit'):>24}" if profit else ""
        lines.append(line + (" *" if r.get("outside_seen_range") else ""))
    if result["outside_seen_range"]:
        lines.append(
            f"\n* warning: the plan leaves the spend range the data saw for {', '.join(result['outside_seen_range'])}:"
            " the curve is extrapolated there"
        )
    return "\n".join(lines)


def _change(row: dict, key: str) -> str:
    low, high = row[f"{key}_change_interval"]
    fmt = lambda x: "-" if x is None else f"{x:+,.0f}"  # noqa: E731
    return f"{fmt(row[f'{key}_change'])} [{fmt(low)}, {fmt(high)}]"
