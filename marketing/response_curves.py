"""Diminishing-returns response curves of leads to spend per paid channel, with carryover, season and uncertainty.

Per paid channel, leads per period (by source channel) follow a Hill curve of the adstocked spend
(`marketing.adstock`: a share lambda of a period's effect carries into the next, lambda chosen per channel
on a grid), `leads(A) = b + m * A^k / (A^k + h^k)`, after dividing out an annual season estimated pooled
over the paid channels (`marketing.seasonality`, from a year of data on). Because a spend held at s gives
A = s, `leads(s)` is the leads per period once spend has been s for a while, at the average season: the
steady state the optimiser compares. Fits are penalised least squares over complete periods before `as_of`
(`marketing.curve_fit`), with uncertainty from a seeded bootstrap over periods that re-selects lambda per
resample (and over the channel's leads for their mean value). Value per period is `leads(s) * value_per_lead`.
A channel whose spend hardly varied, whose return the data do not pin down, or whose curve does not explain
its leads is marked "insufficient evidence". Money is in the export's currency, per period (`period_days`,
a week in the simulator); "current" spend is the mean of the last 13 weeks' periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.stats import f as f_dist

from marketing.adstock import CARRYOVER_GRID, adstock, select_carryover
from marketing.channels import RECENT_DAYS, leads_per_period, period_days, spend_periods
from marketing.curve_fit import (
    Problem,
    hill,
    hill_slope,
    levenberg_marquardt,
    make_problem,
    r_squared,
    starts,
    to_params,
    to_theta,
)
from marketing.lead_values import realised_lead_values
from marketing.seasonality import MIN_SEASON_DAYS, Season, fit_season

__all__ = ["ChannelCurve", "ResponseCurves", "fit_channel_curve", "fit_response_curves", "hill", "hill_slope"]

# The status of a channel in the fit (fitted, insufficient evidence) and in the advice (locked, moved, kept).
FITTED, INSUFFICIENT, LOCKED, MOVED, KEPT = "fitted", "insufficient evidence", "locked", "moved", "kept"
# A fitted channel whose leads do not follow its spend in the range tried, and whose next unit of money returns
# less than it costs in 90% of the bootstrap fits: flat there, it may be cut but never given more.
SATURATED = "saturated"
INTERVAL = 0.8  # the reported intervals are central 80% bootstrap intervals
# Weak priors (sd on the log scale) pulling an ill-determined curve towards h near the median spend and
# k = 1 (Michaelis-Menten): a few months of noisy weekly counts cannot tell a steep sigmoid from a gentle
# curve, and an unpenalised fit that picks the sigmoid gets the local slope (what the advice rests on) wrong.
PRIOR_SD = (1.0, 0.35)
# A fit is too poor to act on when the 80% bootstrap range of its marginal ROI at current spend is wider than
# both twice the estimate and 1: the data cannot tell a strong return from none, and the difference matters.
POOR_FIT_RELATIVE_RANGE, POOR_FIT_ROI_RANGE = 2.0, 1.0
# Fit quality gates the moves. A curve "does not explain its data" (poor: the channel is not moved) when
# (1) an F-test of the curve (m, h, k and a nonzero lambda) against a constant, on the adstocked, de-seasoned
# leads, gives p > MAX_P_VALUE: its spend explains no more than chance would (pure noise: p > 0.05 in 40 of 40
# generated series); or (2) refitted on all but the last HELDOUT_PERIODS periods, it predicts them with more
# than twice the squared error of the fitted periods' mean (skill = 1 - MSE_curve / MSE_mean < MIN_HELDOUT_SKILL).
# 13 weeks hold two or three spend regimes, so a real curve often scores a little below 0 there (a quarter of
# small generated channels do): only a clear miss gates. "good" when r2 >= GOOD_R2 and the held-out skill is
# not negative, "weak" otherwise (still moved).
MAX_P_VALUE, HELDOUT_PERIODS, MIN_HELDOUT_SKILL, GOOD_R2 = 0.05, 13, -1.0, 0.25
# A flat curve (p > MAX_P_VALUE) is not "no evidence" when its marginal ROI is known to be low: when the upper end
# of its 80% interval is under SATURATED_ROI (each unit of money returns less than it costs, even at a 100% margin),
# the data say that spend is past saturation there, and the channel is SATURATED (cut only) instead of frozen.
SATURATED_ROI = 1.0
# LM steps per resample and rate, warm from the full-data fit, to re-select lambda (1 ranks as 6 do).
BOOT_SELECT_STEPS = 1
# A fit stops once a step gains less than this share of its cost: far below what separates the carryover
# rates or moves the marginal return (checked: 1e-9 changes neither), at a third of the iterations.
# The naive fit (no carryover grid) keeps the stricter 1e-9 it always had, so that it reproduces earlier fits.
FIT_TOL, NAIVE_FIT_TOL = 1e-6, 1e-9


def _tol(rates: tuple[float, ...] | np.ndarray) -> float:
    """The stopping tolerance of the fits on this carryover grid."""
    return NAIVE_FIT_TOL if len(rates) == 1 else FIT_TOL


def finite_or_none(x: float) -> float | None:
    """A float for JSON, None when it is not finite."""
    x = float(x)
    return x if np.isfinite(x) else None


@dataclass
class ChannelCurve:
    """One paid channel's fitted steady-state response: leads per period vs spend per period, and a lead's value."""

    channel: str
    params: np.ndarray  # b, m, h, k of the point fit
    boot_params: np.ndarray  # (n_boot, 4) bootstrap fits over periods
    value_per_lead: float
    boot_value_per_lead: np.ndarray  # (n_boot,) bootstrap means over the channel's valued leads
    current_spend: float  # mean spend per period over the last 13 weeks
    spend_min: float
    spend_max: float
    spend_cv: float
    periods: int
    valued_leads: int
    r2: float  # on the adstocked, de-seasoned leads
    status: str = FITTED
    reason: str = ""
    carryover: float = 0.0  # lambda: the share of a period's effect carried into the next
    boot_carryover: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_boot,) lambda per resample
    p_value: float = float("nan")  # F-test of the curve against a constant
    heldout_skill: float = float("nan")  # 1 - MSE / MSE of the mean on the last HELDOUT_PERIODS periods

    @property
    def fitted(self) -> bool:
        """Whether a curve was fitted at all (too few periods leave its parameters NaN)."""
        return bool(np.all(np.isfinite(self.params)))

    @property
    def quality(self) -> str:
        """good, weak or poor (see MAX_P_VALUE); poor channels are not moved."""
        if not self.fitted or not self.p_value <= MAX_P_VALUE or self.heldout_skill < MIN_HELDOUT_SKILL:
            return "poor"
        good = self.r2 >= GOOD_R2 and not self.heldout_skill < 0
        return "good" if good else "weak"

    def leads(self, spend: np.ndarray | float) -> np.ndarray:
        """Expected leads per period once spend has been `spend` for a while, at the average season."""
        return hill(np.asarray(spend, dtype=float), self.params)

    def value(self, spend: np.ndarray | float) -> np.ndarray:
        """Expected value per period at `spend` (leads x value per lead), under the point fit."""
        return self.leads(spend) * self.value_per_lead

    def marginal_roi(self, spend: np.ndarray | float) -> np.ndarray:
        """Value returned by the next unit of money at `spend` (d value / d spend)."""
        return hill_slope(np.asarray(spend, dtype=float), self.params) * self.value_per_lead

    def boot_values(self, spend: float) -> np.ndarray:
        """Value per period at `spend` under every bootstrap draw (curve and value per lead)."""
        return hill(np.full(len(self.boot_params), spend), self.boot_params) * self.boot_value_per_lead

    def summary(self) -> dict:
        """The fit as a JSON-ready dict."""
        b, m, h, k = (float(x) for x in self.params)
        boot = self.boot_carryover[np.isfinite(self.boot_carryover)]
        interval = (
            np.quantile(boot, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2], method="nearest") if len(boot) else [np.nan] * 2
        )
        return {
            "channel": self.channel,
            "status": self.status,
            "reason": self.reason,
            "leads_per_period": {"base": b, "max": m, "half_saturation": h, "shape": k},
            "carryover": {"rate": float(self.carryover), "interval": [finite_or_none(x) for x in interval]},
            "value_per_lead": float(self.value_per_lead),
            "current_spend": float(self.current_spend),
            "spend_range": [float(self.spend_min), float(self.spend_max)],
            "spend_cv": float(self.spend_cv),
            "periods": int(self.periods),
            "valued_leads": int(self.valued_leads),
            "r2": finite_or_none(self.r2),
            "fit_quality": {
                "r2": finite_or_none(self.r2),
                "p_value": finite_or_none(self.p_value),
                "heldout_skill": finite_or_none(self.heldout_skill),
                "quality": self.quality,
            },
        }


@dataclass
class ResponseCurves:
    """The fitted curves of all paid channels as of a cutoff, with the period length they are expressed in."""

    as_of: pd.Timestamp
    period_days: float
    curves: dict[str, ChannelCurve] = field(default_factory=dict)
    season: Season | None = None
    season_note: str = "none: less than a year of periods"

    def summary(self) -> dict:
        """All fits as a JSON-ready dict."""
        return {
            "as_of": self.as_of.isoformat(),
            "period_days": self.period_days,
            "season": self.season.summary() if self.season is not None else self.season_note,
            "channels": [c.summary() for c in self.curves.values()],
        }


def _fit_grid(spend, leads, drive, prior_sd, start=None) -> tuple[np.ndarray, np.ndarray]:
    """The fit per carryover rate, all rates in one batch: theta (L, 4) and penalised cost (L,).

    From six starts per rate (the best wins), or from `start` (L, 4), e.g. a fit of nearly the same leads.
    """
    problem = make_problem(spend, leads, prior_sd, drive)
    first = starts(spend, leads) if start is None else start[:, None, :]
    rates, n_starts = len(drive), first.shape[-2]
    if rates > 1 and n_starts > 1:
        problem = replace(problem, log_spend=np.repeat(problem.log_spend, n_starts, axis=0))
    initial = np.tile(first, (rates, 1)) if start is None else start
    theta, cost = levenberg_marquardt(problem, initial, tol=_tol(drive))
    theta, cost = theta.reshape(rates, n_starts, 4), cost.reshape(rates, n_starts)
    best = np.argmin(cost, axis=1)
    return theta[np.arange(rates), best], cost[np.arange(rates), best]


def _bootstrap_curve(spend, leads, drive, thetas, params, prior_sd, n_boot: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Refit on `n_boot` resamples of the periods at once, re-selecting the carryover rate per resample.

    Periods are resampled as (adstocked spend, leads) pairs for every rate (the adstock ran over the whole
    sequence first); a warm-started step per resample and rate ranks the rates by the point fit's rule
    (`select_carryover`), then each resample's chosen rate is fitted to the end. So the intervals on the
    curve and its marginal return carry the uncertainty of the rate too.
    Returns the parameters (n_boot, 4) and the index of each resample's rate (n_boot,).
    """
    pick = rng.integers(0, len(spend), size=(n_boot, len(spend)))
    base = make_problem(spend, leads, prior_sd, drive)
    rates = len(drive)
    choice = np.zeros(n_boot, dtype=int)
    log_spend, start = base.log_spend[0][pick], np.tile(to_theta(params), (n_boot, 1))
    if rates > 1:
        stacked = base.log_spend[:, pick].reshape(rates * n_boot, -1)
        screen = replace(base, log_spend=stacked, leads=np.tile(leads[pick], (rates, 1)))
        theta, cost = levenberg_marquardt(screen, np.repeat(thetas, n_boot, axis=0), BOOT_SELECT_STEPS, _tol(drive))
        choice = select_carryover(cost.reshape(rates, n_boot).T, len(spend))
        row = choice * n_boot + np.arange(n_boot)
        log_spend, start = stacked[row], theta[row]
    problem = Problem(log_spend, leads[pick], base.lower, base.upper, base.prior_centre, base.prior_weight)
    theta, _ = levenberg_marquardt(problem, start, tol=_tol(drive))
    return to_params(theta), choice


def _bootstrap_mean(values: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Bootstrap means of `values` (n_boot resamples)."""
    if len(values) == 0:
        return np.full(n_boot, np.nan)
    weights = rng.multinomial(len(values), np.full(len(values), 1.0 / len(values)), size=n_boot)
    return weights @ values / len(values)


def _p_value(r2: float, n: int, free: int) -> float:
    """F-test p-value of a curve with `free` parameters beyond the constant explaining a share r2 of n periods."""
    if not np.isfinite(r2) or n <= free + 1:
        return float("nan")
    stat = (max(r2, 0.0) / free) / (max(1.0 - r2, 1e-12) / (n - free - 1))
    return float(f_dist.sf(stat, free, n - free - 1))


def _heldout_skill(spend, leads, drive, theta, prior_sd) -> float:
    """Skill on the last HELDOUT_PERIODS periods of the curve refitted on the earlier ones (NaN: too short)."""
    cut = len(spend) - HELDOUT_PERIODS
    if cut < 2 * HELDOUT_PERIODS or (spend[:cut] > 0).sum() < 4:
        return float("nan")
    problem = make_problem(spend[:cut], leads[:cut], prior_sd, drive[None, :cut])
    fit, _ = levenberg_marquardt(problem, theta[None, :], tol=FIT_TOL)
    error = ((hill(drive[cut:], to_params(fit[0])) - leads[cut:]) ** 2).mean()
    baseline = ((leads[:cut].mean() - leads[cut:]) ** 2).mean()
    return float(1.0 - error / baseline) if baseline > 0 else float("nan")


def _evidence(curve: ChannelCurve, min_cv: float, min_periods: int, min_leads: int) -> tuple[str, str]:
    """Whether the data can support moving this channel's budget: (status, reason)."""
    if curve.periods < min_periods:
        return INSUFFICIENT, f"only {curve.periods} complete periods with spend (need {min_periods})"
    if curve.spend_cv < min_cv:
        return INSUFFICIENT, f"spend hardly varied (coefficient of variation {curve.spend_cv:.2f} < {min_cv:.2f})"
    if curve.valued_leads < min_leads:
        return INSUFFICIENT, f"only {curve.valued_leads} leads with a value (need {min_leads})"
    if not np.isfinite(curve.value_per_lead) or curve.value_per_lead <= 0:
        return INSUFFICIENT, "its leads have no positive value yet"
    if not curve.fitted:
        return INSUFFICIENT, "the response curve could not be fitted"
    lo, hi = np.nanquantile(_boot_marginal(curve), [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2])
    point = abs(float(curve.marginal_roi(curve.current_spend)))
    if hi - lo > max(POOR_FIT_RELATIVE_RANGE * point, POOR_FIT_ROI_RANGE):
        return INSUFFICIENT, f"the data hardly pin its return down (next unit of money returns {lo:.2f} to {hi:.2f})"
    if not curve.p_value <= MAX_P_VALUE and hi < SATURATED_ROI:
        return SATURATED, (
            f"its leads hardly follow its spend in the range tried, and the next unit of money returns at most "
            f"{hi:.2f} (80% interval {lo:.2f} to {hi:.2f}): it may be cut, never raised"
        )
    if not curve.p_value <= MAX_P_VALUE:
        return INSUFFICIENT, (
            f"its leads hardly follow its spend (the curve explains {max(curve.r2, 0.0):.0%} of their variation "
            "from period to period, no more than chance)"
        )
    if curve.heldout_skill < MIN_HELDOUT_SKILL:
        return INSUFFICIENT, (
            f"fitted to earlier periods, its curve predicts the last {HELDOUT_PERIODS} worse than their average"
        )
    return FITTED, ""


def _boot_marginal(curve: ChannelCurve) -> np.ndarray:
    """Marginal ROI at current spend under every bootstrap draw."""
    slope = hill_slope(np.full(len(curve.boot_params), curve.current_spend), curve.boot_params)
    return slope * curve.boot_value_per_lead


def _point_fit(spend, leads, prior_sd, rates, start=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Adstocked spend per rate (L, n), the fit per rate (L, 4) and the chosen rate's index."""
    drive = adstock(spend, rates)
    thetas, costs = _fit_grid(spend, leads, drive, prior_sd, start)
    return drive, thetas, int(select_carryover(costs, len(spend)))


def fit_channel_curve(
    channel: str,
    periods: pd.DataFrame,
    values: np.ndarray,
    current_spend: float,
    n_boot: int = 200,
    seed: int = 0,
    prior_sd: tuple[float, float] | None = PRIOR_SD,
    rates: tuple[float, ...] = CARRYOVER_GRID,
    season: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> ChannelCurve:
    """Fit one channel's curve to its periods (spend, leads; in time order) and bootstrap it.

    The Hill curve is fitted to the leads against the adstocked spend for every rate on the grid at once;
    the rate with the lowest penalised sum of squares wins if it beats lambda = 0 by the BIC-like margin of
    `select_carryover` (n log(SSE_0 / SSE) > log n), else lambda = 0. A spend held at s gives A = s, so the
    curve reads leads per period once spend has been s for a while (the steady state), at the average season.

    `values` are its leads' values; `rates` the carryover grid ((0.0,): no carryover); `season` the
    multiplicative season factor of each period (None: no season), divided out of the leads before the fit;
    `start` (len(rates), 4) warm-starts the fit per rate instead of the six standard starts.
    """
    rng = np.random.default_rng([seed, sum(map(ord, channel))])
    spend = periods["spend"].to_numpy(dtype=float)
    leads = periods["leads"].to_numpy(dtype=float)
    if season is not None:
        leads = leads / season
    curve = ChannelCurve(
        channel=channel,
        params=np.full(4, np.nan),
        boot_params=np.full((n_boot, 4), np.nan),
        value_per_lead=float(values.mean()) if len(values) else float("nan"),
        boot_value_per_lead=_bootstrap_mean(values, n_boot, rng),
        current_spend=float(current_spend),
        spend_min=float(spend.min()) if len(spend) else float("nan"),
        spend_max=float(spend.max()) if len(spend) else float("nan"),
        spend_cv=float(spend.std() / spend.mean()) if len(spend) and spend.mean() > 0 else 0.0,
        periods=int((spend > 0).sum()),
        valued_leads=len(values),
        r2=float("nan"),
        boot_carryover=np.full(n_boot, np.nan),
    )
    if curve.periods >= 4:
        drive, thetas, chosen = _point_fit(spend, leads, prior_sd, rates, start)
        curve.params, curve.carryover = to_params(thetas[chosen]), float(rates[chosen])
        curve.r2 = r_squared(drive[chosen], leads, curve.params)
        curve.p_value = _p_value(curve.r2, len(spend), 3 + (chosen > 0))
        curve.heldout_skill = _heldout_skill(spend, leads, drive[chosen], thetas[chosen], prior_sd)
        curve.boot_params, boot_rate = _bootstrap_curve(
            spend, leads, drive, thetas, curve.params, prior_sd, n_boot, rng
        )
        curve.boot_carryover = np.asarray(rates, dtype=float)[boot_rate]
    return curve


def _estimate_season(channels: list[tuple], prior_sd, rates) -> tuple[Season | None, dict[str, np.ndarray]]:
    """The annual season pooled over paid channels, against each one's curve fitted without a season.

    Returns the season (None: less than a year) and each channel's fits per rate, to warm-start the final fits.
    """
    dates, leads, expected, fits = [], [], [], {}
    for channel, rows, _, _ in channels:
        spend = rows["spend"].to_numpy(dtype=float)
        if (spend > 0).sum() < 4:
            continue
        observed = rows["leads"].to_numpy(dtype=float)
        drive, fits[channel], chosen = _point_fit(spend, observed, prior_sd, rates)
        dates.append(_midpoints(rows))
        leads.append(observed)
        expected.append(hill(drive[chosen], to_params(fits[channel][chosen])))
    if not dates:
        return None, fits
    season = fit_season(pd.DatetimeIndex(np.concatenate(dates)), np.concatenate(leads), np.concatenate(expected))
    return season, fits


def _span_days(periods: pd.DataFrame) -> float:
    """Days from the first period's start to the last one's end (0 without periods)."""
    return (periods["period_end"].max() - periods["period_start"].min()).days if len(periods) else 0.0


def _midpoints(rows: pd.DataFrame) -> np.ndarray:
    """The middle of each period (what its season is read at)."""
    return (rows["period_start"] + (rows["period_end"] - rows["period_start"]) / 2).to_numpy()


def fit_response_curves(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    lead_values: pd.Series | None = None,
    n_boot: int = 200,
    seed: int = 0,
    min_cv: float = 0.1,
    min_periods: int = 12,
    min_leads: int = 30,
    prior_sd: tuple[float, float] | None = PRIOR_SD,
    carryover: bool = True,
) -> ResponseCurves:
    """Fit every paid channel's response curve from complete periods before `as_of` (exclusive).

    Args:
        tables: needs customers (source_channel, created_at) and channel_spend.
        lead_values: customer_id -> expected value of a lead (currency); None uses `realised_lead_values`.
        n_boot, seed: bootstrap resamples over periods (and over leads for their mean value), seeded.
        min_cv, min_periods, min_leads: below these a channel is marked "insufficient evidence".
        prior_sd: sd of the weak priors on log h (around the median spend) and log k (around 1); None: no priors.
        carryover: False fits the naive model (each period's leads on that period's spend, no season), for
            benchmarks; the fit-quality gate applies either way.
    """
    as_of = pd.Timestamp(as_of)
    if tables.get("channel_spend") is None:
        raise ValueError("budget advice needs the channel_spend table")
    if lead_values is None:
        lead_values = realised_lead_values(tables, as_of)
    periods = spend_periods(tables["channel_spend"], as_of)
    customers = tables["customers"]
    periods = leads_per_period(customers[customers["created_at"] < as_of], periods)
    recent_start = periods["period_end"].max() - pd.Timedelta(days=RECENT_DAYS) if len(periods) else as_of
    source = customers.set_index("customer_id")["source_channel"]
    valued = lead_values.dropna()
    valued_channel = source.reindex(valued.index)
    paid = []
    for channel, rows in periods.groupby("channel", sort=True):
        current = float(rows.loc[rows["period_start"] >= recent_start, "spend"].mean())
        if np.isfinite(current) and current > 0:  # otherwise not a paid channel now: nothing to move
            paid.append((str(channel), rows, valued[valued_channel == channel].to_numpy(dtype=float), current))
    rates = CARRYOVER_GRID if carryover else (0.0,)
    out = ResponseCurves(as_of=as_of, period_days=period_days(periods))
    warm = {}
    if not carryover:
        out.season_note = "none: not estimated (naive fit)"
    elif _span_days(periods) >= MIN_SEASON_DAYS:
        out.season, warm = _estimate_season(paid, prior_sd, rates)
    for channel, rows, values, current in paid:
        season = out.season.factor(_midpoints(rows)) if out.season is not None else None
        curve = fit_channel_curve(
            channel, rows, values, current, n_boot, seed, prior_sd, rates, season, warm.get(channel)
        )
        curve.status, curve.reason = _evidence(curve, min_cv, min_periods, min_leads)
        out.curves[channel] = curve
    return out
