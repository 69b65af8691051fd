"""Channel budget advice: the optimiser's allocation as rows per channel, with sentences, a table and a chart.

`budget_advice` fits the response curves (`marketing.response_curves`) and advises spend (`marketing.optimiser`)
in one call; `marketing.explain` words it. Every figure is per period (`period_days`) in the export's currency,
with central 80% bootstrap intervals. `log_channel_report` logs the channel performance and the advice to MLflow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from marketing.channels import channel_performance
from marketing.explain import advice_sentences, format_advice, period_word
from marketing.optimiser import MIN_MOVE, PROFIT, VALUE, Allocation, allocate_budget, with_current_spend
from marketing.response_curves import (
    INSUFFICIENT,
    INTERVAL,
    KEPT,
    LOCKED,
    MOVED,
    SATURATED,
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
    objective: str = VALUE,
    margin: float = 1.0,
    min_move: float = MIN_MOVE,
    current_spend: Mapping[str, float] | None = None,
) -> dict:
    """Advise spend per period per channel under the fitted curves, for value (same total) or for profit.

    Args:
        curves: `fit_response_curves` output.
        total_budget: spend per period to allocate; None keeps the current total. Refused with "profit".
        max_shift: each channel stays within current x (1 +- max_shift).
        min_spend, max_spend: channel -> bounds on its spend per period.
        locked: channels kept at their current spend (channels with insufficient evidence are kept too).
        extrapolate: allow spend outside the range the channel's periods ever saw (default: no).
        objective: "value" maximises the total expected value at the same total; "profit" maximises
            margin x value - spend with the total free.
        margin: the share of a lead's value that is profit, for "profit" (default 1.0: values are profits).
        min_move: a move smaller than this share of a channel's spend is not made ("kept"; the rest re-solved).
        current_spend: channel -> spend per period to start from (default: the observed level).
    Returns:
        A JSON-ready dict: `period_days`, `constraints`, `channels` (one row per paid channel), `total` and
        `sentences`. The advice's objective under the fitted curves is never below the current allocation's
        (scaled to the new total when `total_budget` differs).
    Raises:
        ValueError: on an option out of range, or when the bounds cannot meet the total.
    """
    curves = with_current_spend(curves, current_spend)
    allocation = allocate_budget(
        curves, total_budget, max_shift, min_spend, max_spend, locked, extrapolate, seed, objective, margin, min_move
    )
    fits, current, recommended = allocation.fits, allocation.current, allocation.recommended
    rows = [_channel_row(c, r, allocation) for c, r in zip(fits, recommended, strict=True)]
    return {
        "as_of": curves.as_of.isoformat(),
        "period_days": curves.period_days,
        "constraints": {
            "objective": objective,
            "margin": margin,
            "total_budget": allocation.total,
            "max_shift": max_shift,
            "min_spend": dict(min_spend or {}),
            "max_spend": dict(max_spend or {}),
            "min_move": min_move,
            "locked": sorted(locked),
            "current_spend": dict(current_spend or {}),
            "extrapolate": extrapolate,
        },
        "channels": rows,
        "total": _total_row(fits, current, recommended, margin if objective == PROFIT else None),
        "sentences": advice_sentences(rows, curves.period_days, objective, margin),
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


def fit_quality(curve: ChannelCurve) -> str:
    """The fit's quality in a word (good, weak, poor) and its r2, e.g. "weak 0.18" ('-' when not fitted)."""
    if not curve.fitted or not np.isfinite(curve.r2):
        return "-"
    return f"{curve.quality} {curve.r2:.2f}"


def average_roi(curve: ChannelCurve, spend: float) -> float | None:
    """Value of the channel's paid leads per unit of spend: (leads(spend) - leads(0)) x value per lead / spend."""
    if not curve.fitted or spend <= 0:
        return None
    return finite_or_none((curve.leads(spend) - curve.leads(0.0)) * curve.value_per_lead / spend)


def _channel_row(curve: ChannelCurve, recommended: float, allocation: Allocation) -> dict:
    """One channel's advice as a JSON-ready dict."""
    cur = curve.current_spend
    change = recommended - cur
    moved = abs(change) > 1e-3 * max(cur, 1.0)
    frozen = allocation.frozen.get(curve.channel)
    status = frozen or (MOVED if moved else KEPT)
    draws = _boot_change(curve, recommended)
    low, high = _interval(draws)
    fitted = curve.fitted
    value_change = float(curve.value(recommended) - curve.value(cur)) if fitted and moved else 0.0
    row = {
        "channel": curve.channel,
        "status": status,
        "reason": _reason(curve, status, allocation),
        "current_spend": float(cur),
        "recommended_spend": float(recommended),
        "change": float(change),
        "change_pct": float(change / cur) if cur > 0 else None,
        "average_roi_current": average_roi(curve, cur),
        "marginal_roi_current": finite_or_none(curve.marginal_roi(cur)) if fitted else None,
        "marginal_roi_recommended": finite_or_none(curve.marginal_roi(recommended)) if fitted else None,
        "value_per_lead": finite_or_none(curve.value_per_lead),
        "leads_current": finite_or_none(curve.leads(cur)) if fitted else None,
        "leads_recommended": finite_or_none(curve.leads(recommended)) if fitted else None,
        "expected_value_current": finite_or_none(curve.value(cur)) if fitted else None,
        "expected_value_change": value_change,
        "expected_value_change_low": low if moved else 0.0,
        "expected_value_change_high": high if moved else 0.0,
        "fit_quality": fit_quality(curve),
        "fit": curve.summary(),
    }
    if allocation.objective == PROFIT:
        plow, phigh = _interval(allocation.margin * draws - change) if moved else (0.0, 0.0)
        row |= {
            "expected_profit_change": allocation.margin * value_change - (change if moved else 0.0),
            "expected_profit_change_low": plow,
            "expected_profit_change_high": phigh,
        }
    return row


def _reason(curve: ChannelCurve, status: str, allocation: Allocation) -> str:
    """Why a channel did not move: insufficient evidence, locked, or a best move under the threshold."""
    if status == INSUFFICIENT:
        return curve.reason
    if status == LOCKED:
        return "locked by request"
    if status == KEPT and curve.channel in allocation.kept:
        return allocation.kept[curve.channel]
    return curve.reason if curve.status == SATURATED else ""


def _total_row(fits: list[ChannelCurve], current: np.ndarray, recommended: np.ndarray, margin: float | None) -> dict:
    """Totals per period: spend, expected value now and advised, the uplift with its 80% interval; with a
    margin (profit objective) the expected profit now and advised with theirs."""
    usable = [i for i, c in enumerate(fits) if c.fitted]
    value_now = sum(float(fits[i].value(current[i])) for i in usable)
    value_new = sum(float(fits[i].value(recommended[i])) for i in usable)
    draws = sum((_boot_change(fits[i], recommended[i]) for i in usable), np.zeros(1))
    low, high = _interval(np.atleast_1d(draws))
    row = {
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
    if margin is None:
        return row
    now, new = (margin * sum(fits[i].boot_values(s[i]) for i in usable) - s.sum() for s in (current, recommended))
    return row | {
        "margin": margin,
        "expected_profit_current": margin * value_now - float(current.sum()),
        "expected_profit_recommended": margin * value_new - float(recommended.sum()),
        "expected_profit_change": margin * (value_new - value_now) - float(recommended.sum() - current.sum()),
        **_bounds_of("expected_profit_current", np.atleast_1d(now)),
        **_bounds_of("expected_profit_recommended", np.atleast_1d(new)),
        **_bounds_of(
            "expected_profit_change", margin * np.atleast_1d(draws) - float(recommended.sum() - current.sum())
        ),
    }


def _bounds_of(key: str, draws: np.ndarray) -> dict:
    """`{key}_low` and `{key}_high`: the 80% interval of the draws."""
    low, high = _interval(draws)
    return {f"{key}_low": low, f"{key}_high": high}


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
    optimiser's (total_budget, max_shift, min_spend, max_spend, locked, extrapolate, objective, margin,
    min_move, current_spend). Without `lead_values` a lead is valued at its realised first-365-day net revenue
    (`realised_lead_values`).
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
    ax.set(ylabel=f"spend per {period_word(advice['period_days'])}", title="Channel budget: current vs advised")
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
