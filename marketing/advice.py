"""Channel budget advice: the optimiser's allocation as rows per channel, plain sentences, a table and a chart.

`budget_advice` fits the response curves (`marketing.response_curves`) and reallocates spend
(`marketing.optimiser`) in one call; every figure is per period (`period_days`) in the export's currency, with
central 80% bootstrap intervals. `log_channel_report` logs the channel performance and the advice to MLflow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from marketing.channels import channel_performance
from marketing.optimiser import allocate_budget
from marketing.response_curves import (
    INSUFFICIENT,
    INTERVAL,
    KEPT,
    LOCKED,
    MOVED,
    ChannelCurve,
    ResponseCurves,
    finite_or_none,
    fit_response_curves,
)


def recommend_budget(
    curves: ResponseCurves,
    total_budget: float | None = None,
    max_shift: float = 0.2,
    min_spend: Mapping[str, float] | None = None,
    max_spend: Mapping[str, float] | None = None,
    locked: Collection[str] = (),
    extrapolate: bool = False,
    seed: int = 0,
) -> dict:
    """Reallocate paid spend per period to maximise total expected value under the fitted curves.

    Args:
        curves: `fit_response_curves` output.
        total_budget: spend per period to allocate (currency); None keeps the current total.
        max_shift: each channel stays within current x (1 +- max_shift).
        min_spend, max_spend: channel -> bounds on its spend per period.
        locked: channels kept at their current spend (channels with insufficient evidence are kept too).
        extrapolate: allow spend outside the range the channel's periods ever saw (default: no).
    Returns:
        A JSON-ready dict: `period_days`, `channels` (one row per paid channel), `total` and `sentences`.
        The advice's expected value under the fitted curves is never below the current allocation's (scaled
        to the new total when `total_budget` differs).
    Raises:
        ValueError: when the bounds cannot meet the total.
    """
    allocation = allocate_budget(curves, total_budget, max_shift, min_spend, max_spend, locked, extrapolate, seed)
    fits, current, recommended = allocation.fits, allocation.current, allocation.recommended
    rows = [_channel_row(c, r, allocation.frozen.get(c.channel)) for c, r in zip(fits, recommended, strict=True)]
    return {
        "as_of": curves.as_of.isoformat(),
        "period_days": curves.period_days,
        "constraints": {
            "total_budget": allocation.total,
            "max_shift": max_shift,
            "min_spend": dict(min_spend or {}),
            "max_spend": dict(max_spend or {}),
            "locked": sorted(locked),
            "extrapolate": extrapolate,
        },
        "channels": rows,
        "total": _total_row(fits, current, recommended),
        "sentences": advice_sentences(rows, curves.period_days),
    }


def _interval(draws: np.ndarray) -> tuple[float | None, float | None]:
    """The central `INTERVAL` range of bootstrap draws (None when there are none)."""
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return None, None
    low, high = np.quantile(draws, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2])
    return float(low), float(high)


def _boot_change(curve: ChannelCurve, recommended: float) -> np.ndarray:
    """Bootstrap draws of the channel's value change per period from current to recommended spend."""
    if abs(recommended - curve.current_spend) <= 1e-9:
        return np.zeros(len(curve.boot_params))
    return curve.boot_values(recommended) - curve.boot_values(curve.current_spend)


def _channel_row(curve: ChannelCurve, recommended: float, frozen: str | None) -> dict:
    """One channel's advice as a JSON-ready dict."""
    cur = curve.current_spend
    change = recommended - cur
    moved = abs(change) > 1e-3 * max(cur, 1.0)
    status = frozen or (MOVED if moved else KEPT)
    low, high = _interval(_boot_change(curve, recommended))
    fitted = curve.fitted
    return {
        "channel": curve.channel,
        "status": status,
        "reason": curve.reason if status == INSUFFICIENT else ("locked by request" if status == LOCKED else ""),
        "current_spend": float(cur),
        "recommended_spend": float(recommended),
        "change": float(change),
        "change_pct": float(change / cur) if cur > 0 else None,
        "marginal_roi_current": finite_or_none(curve.marginal_roi(cur)) if fitted else None,
        "marginal_roi_recommended": finite_or_none(curve.marginal_roi(recommended)) if fitted else None,
        "value_per_lead": finite_or_none(curve.value_per_lead),
        "leads_current": finite_or_none(curve.leads(cur)) if fitted else None,
        "leads_recommended": finite_or_none(curve.leads(recommended)) if fitted else None,
        "expected_value_current": finite_or_none(curve.value(cur)) if fitted else None,
        "expected_value_change": float(curve.value(recommended) - curve.value(cur)) if fitted and moved else 0.0,
        "expected_value_change_low": low if moved else 0.0,
        "expected_value_change_high": high if moved else 0.0,
        "fit": curve.summary(),
    }


def _total_row(fits: list[ChannelCurve], current: np.ndarray, recommended: np.ndarray) -> dict:
    """Totals per period: spend, expected value now and advised, and the uplift with its 80% interval."""
    usable = [i for i, c in enumerate(fits) if c.fitted]
    value_now = sum(float(fits[i].value(current[i])) for i in usable)
    value_new = sum(float(fits[i].value(recommended[i])) for i in usable)
    draws = sum((_boot_change(fits[i], recommended[i]) for i in usable), np.zeros(1))
    low, high = _interval(np.atleast_1d(draws))
    return {
        "current_spend": float(current.sum()),
        "recommended_spend": float(recommended.sum()),
        "expected_value_current": value_now,
        "expected_value_recommended": value_new,
        "expected_uplift": value_new - value_now,
        "expected_uplift_pct": (value_new - value_now) / value_now if value_now > 0 else None,
        "expected_uplift_low": low,
        "expected_uplift_high": high,
        "interval": INTERVAL,
    }


# ----------------------------------------------------------------------------------------------- explaining


def _period_word(days: float) -> str:
    """'week', 'month' or 'N days' for a period length in days."""
    if abs(days - 7) < 0.5:
        return "week"
    if 27.5 <= days <= 31.5:
        return "month"
    return f"{days:g} days"


def _flows(rows: list[dict]) -> list[tuple[dict | None, dict | None, float]]:
    """Match money taken from channels to money given to others: (from row, to row, amount) per move.

    Donors with the lowest marginal return give first to receivers with the highest; a total that grows or
    shrinks shows up as flows from or to None.
    """
    moved = [r for r in rows if r["status"] == MOVED]
    donors = sorted((r for r in moved if r["change"] < 0), key=lambda r: r["marginal_roi_current"] or 0.0)
    receivers = sorted((r for r in moved if r["change"] > 0), key=lambda r: -(r["marginal_roi_current"] or 0.0))
    give = [[r, -r["change"]] for r in donors]
    take = [[r, r["change"]] for r in receivers]
    extra = sum(t for _, t in take) - sum(g for _, g in give)
    if extra > 0:
        give.append([None, extra])
    elif extra < 0:
        take.append([None, -extra])
    flows, i, j = [], 0, 0
    while i < len(give) and j < len(take):
        amount = min(give[i][1], take[j][1])
        if amount > 1e-6:
            flows.append((give[i][0], take[j][0], amount))
        give[i][1] -= amount
        take[j][1] -= amount
        i += give[i][1] <= 1e-6
        j += take[j][1] <= 1e-6
    return flows


def _sentence(donor: dict | None, receiver: dict | None, amount: float, period: str) -> str:
    """One plain sentence for one move of money."""
    if donor is None:
        return (
            f"add {amount:,.0f} per {period} to {receiver['channel']}: the next unit of money returns "
            f"{receiver['marginal_roi_current']:.1f} there"
        )
    share = amount / donor["current_spend"]
    if receiver is None:
        return (
            f"cut {donor['channel']} spend by {share:.0%} ({amount:,.0f} per {period}): the last unit of money "
            f"returns {donor['marginal_roi_current']:.1f} there, the least of the channels that can give"
        )
    return (
        f"move {share:.0%} of {donor['channel']} spend ({amount:,.0f} per {period}) to {receiver['channel']}: "
        f"the next unit of money returns {receiver['marginal_roi_current']:.1f} there "
        f"against {donor['marginal_roi_current']:.1f}"
    )


def advice_sentences(rows: list[dict], period_days: float) -> list[str]:
    """Plain sentences: one per move of money, one per channel kept for lack of evidence or by request."""
    period = _period_word(period_days)
    out = [_sentence(d, r, a, period) for d, r, a in _flows(rows)]
    if not out:
        out.append("keep the current allocation: no shift within the limits raises the expected value")
    for row in rows:
        if row["status"] == INSUFFICIENT:
            out.append(f"keep {row['channel']} as it is: {row['reason']}")
        elif row["status"] == LOCKED:
            out.append(f"keep {row['channel']} as it is: locked by request")
    return out


def format_advice(advice: dict) -> str:
    """A short fixed-width table of the advice per channel, the total, then the sentences."""
    period = _period_word(advice["period_days"])
    head = f"{'channel':<12}{'status':<22}{'current':>10}{'advised':>10}{'change':>8}{'mROI now':>10}{'after':>7}"
    lines = [f"Budget advice per {period} as of {advice.get('as_of', '')[:10]}", head + "   value change (80%)"]
    for r in advice["channels"]:
        pct = f"{r['change_pct']:+.0%}" if r["change_pct"] is not None else ""
        lines.append(
            f"{r['channel']:<12}{r['status']:<22}{r['current_spend']:>10,.0f}{r['recommended_spend']:>10,.0f}"
            f"{pct:>8}{_num(r['marginal_roi_current']):>10}{_num(r['marginal_roi_recommended']):>7}"
            f"   {r['expected_value_change']:+,.0f} [{_num(r['expected_value_change_low'], '+,.0f')}, "
            f"{_num(r['expected_value_change_high'], '+,.0f')}]"
        )
    t = advice["total"]
    lines.append(
        f"{'total':<34}{t['current_spend']:>10,.0f}{t['recommended_spend']:>10,.0f}"
        f"   expected value {t['expected_value_current']:,.0f} -> {t['expected_value_recommended']:,.0f} per {period}"
        f" ({t['expected_uplift']:+,.0f}, 80% [{_num(t['expected_uplift_low'], '+,.0f')}, "
        f"{_num(t['expected_uplift_high'], '+,.0f')}])"
    )
    lines += ["", *(f"- {s}" for s in advice["sentences"])]
    return "\n".join(lines)


def _num(x: float | None, fmt: str = ".2f") -> str:
    """A number for the table, '-' when missing."""
    return "-" if x is None else format(x, fmt)


# --------------------------------------------------------------------------------------------- entry points

_FIT_KEYS = ("n_boot", "seed", "min_cv", "min_periods", "min_leads", "prior_sd")


def budget_advice(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    lead_values: pd.Series | None = None,
    progress=None,
    **constraints,
) -> dict:
    """Fit the response curves and recommend a budget in one call (see `fit_response_curves`, `recommend_budget`).

    `progress(step, done, total)`, when given, hears the two steps: fitting the curves, then the optimisation.
    `constraints` may hold the fit's options (n_boot, seed, min_cv, min_periods, min_leads, prior_sd) and the
    optimiser's (total_budget, max_shift, min_spend, max_spend, locked, extrapolate). Without `lead_values`
    a lead is valued at its realised first-365-day net revenue (`realised_lead_values`).
    """
    fit_options = {k: constraints.pop(k) for k in _FIT_KEYS if k in constraints}
    if progress:
        progress("fitting the channel response curves", 0, 2)
    curves = fit_response_curves(tables, as_of, lead_values, **fit_options)
    if "seed" in fit_options:
        constraints.setdefault("seed", fit_options["seed"])
    if progress:
        progress("optimising the budget", 1, 2)
    advice = recommend_budget(curves, **constraints)
    advice["lead_values"] = "given" if lead_values is not None else "realised first-365-day net revenue"
    return advice


def spend_chart(advice: dict):
    """A bar chart (matplotlib Figure, Agg canvas) of current vs recommended spend per channel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = advice["channels"]
    x = np.arange(len(rows))
    fig = Figure(figsize=(6.0, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(x - 0.2, [r["current_spend"] for r in rows], 0.4, label="current", color="#9aa5b1")
    ax.bar(x + 0.2, [r["recommended_spend"] for r in rows], 0.4, label="recommended", color="#2f6fb0")
    ax.set_xticks(x, [r["channel"] + ("" if r["status"] in (MOVED, KEPT) else "*") for r in rows])
    ax.set(ylabel=f"spend per {_period_word(advice['period_days'])}", title="Channel budget: current vs advised")
    ax.legend()
    fig.text(0.01, 0.01, "* not moved: insufficient evidence or locked", fontsize=7)
    fig.tight_layout()
    return fig


def log_channel_report(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    lead_values: pd.Series | None = None,
    method: str = "markov",
    funnel: Funnel = DEFAULT_FUNNEL,
    **constraints,
) -> dict:
    """Log channel performance and budget advice to the active MLflow run; returns the advice.

    Artifacts under `channels/`: performance.csv, budget_advice.json, budget_advice.txt, budget_spend.png;
    metrics budget_expected_uplift (and its 80% bounds). The caller opens the run.
    """
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError("log_channel_report logs to the active MLflow run; wrap the call in mlflow.start_run()")
    performance = channel_performance(tables, as_of, lead_values, method=method, funnel=funnel)
    advice = budget_advice(tables, as_of, lead_values, **constraints)
    mlflow.log_text(performance.to_csv(float_format="%.6g"), "channels/performance.csv")
    mlflow.log_dict(advice, "channels/budget_advice.json")
    mlflow.log_text(format_advice(advice), "channels/budget_advice.txt")
    mlflow.log_figure(spend_chart(advice), "channels/budget_spend.png")
    total = advice["total"]
    metrics = {f"budget_{k}": total[k] for k in ("expected_uplift", "expected_uplift_low", "expected_uplift_high")}
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
    return advice
