"""Channel budget advice: fit diminishing-returns response curves of leads to spend, then reallocate spend.

Per paid channel, leads per period (by source channel) follow a Hill curve of that period's spend,
`leads(s) = b + m * s^k / (s^k + h^k)`, fitted by bounded least squares over complete periods before `as_of`,
with uncertainty from a seeded bootstrap over periods (and over the channel's leads for their mean value).
Value per period is `leads(s) * value_per_lead`. The optimiser maximises the total expected value per period
under the fitted curves for the same (or a given) total budget, with per-channel bounds, a maximum shift per
channel and locked channels; a channel whose spend hardly varied, or whose curve is not supported by the data,
is marked "insufficient evidence" and kept where it is. Money is in the export's currency, per period
(`period_days`, a week in the simulator); "current" spend is the mean of the last 13 weeks' periods.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from marketing.channels import RECENT_DAYS, channel_performance, leads_per_period, period_days, spend_periods

log = logging.getLogger(__name__)

FITTED, INSUFFICIENT, LOCKED, MOVED, KEPT = "fitted", "insufficient evidence", "locked", "moved", "kept"
INTERVAL = 0.8  # the reported intervals are central 80% bootstrap intervals
SHAPE_BOUNDS = (0.5, 3.0)
# Weak priors (sd on the log scale) pulling an ill-determined curve towards h near the median spend and
# k = 1 (Michaelis-Menten): a few months of noisy weekly counts cannot tell a steep sigmoid from a gentle
# curve, and an unpenalised fit that picks the sigmoid gets the local slope (what the advice rests on) wrong.
PRIOR_SD = (1.0, 0.35)
# A fit is too poor to act on when the 80% bootstrap range of its marginal ROI at current spend is wider than
# both twice the estimate and 1: the data cannot tell a strong return from none, and the difference matters.
POOR_FIT_RELATIVE_RANGE, POOR_FIT_ROI_RANGE = 2.0, 1.0


# ------------------------------------------------------------------------------------------------ lead values


def realised_lead_values(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | str, horizon_days: int = 365
) -> pd.Series:
    """customer_id -> net order amount in each lead's first `horizon_days` (the realised value of a lead).

    Only leads created at least `horizon_days` before `as_of` are valued, so every window has closed before
    the cutoff (no look-ahead); refunds (negative amounts) count.
    """
    as_of = pd.Timestamp(as_of)
    horizon = pd.Timedelta(days=horizon_days)
    customers = tables["customers"]
    old = customers.loc[customers["created_at"] <= as_of - horizon, ["customer_id", "created_at"]]
    orders = tables.get("orders")
    if orders is None or old.empty:
        return pd.Series(0.0, index=pd.Index(old["customer_id"], name="customer_id"), name="lead_value")
    joined = orders[["customer_id", "timestamp", "amount"]].merge(old, on="customer_id")
    inside = (joined["timestamp"] >= joined["created_at"]) & (joined["timestamp"] < joined["created_at"] + horizon)
    amount = joined[inside & (joined["timestamp"] < as_of)].groupby("customer_id")["amount"].sum()
    return amount.reindex(old["customer_id"], fill_value=0.0).astype(float).rename("lead_value")


# --------------------------------------------------------------------------------------------- response curves


def hill(spend: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Leads per period at `spend`: b + m * s^k / (s^k + h^k); params (b, m, h, k) on the last axis."""
    b, m, h, k = np.moveaxis(np.asarray(params, dtype=float), -1, 0)
    ratio = np.power(np.maximum(spend, 0.0) / h, k)
    return b + m * ratio / (1.0 + ratio)


def hill_slope(spend: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Extra leads per extra unit of spend at `spend` (the derivative of `hill`)."""
    _, m, h, k = np.moveaxis(np.asarray(params, dtype=float), -1, 0)
    s = np.maximum(spend, 1e-9)
    ratio = np.power(s / h, k)
    return m * k * ratio / (s * (1.0 + ratio) ** 2)


@dataclass
class ChannelCurve:
    """One paid channel's fitted response: leads per period vs spend per period, and the value of a lead."""

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
    r2: float
    status: str = FITTED
    reason: str = ""

    @property
    def fitted(self) -> bool:
        """Whether a curve was fitted at all (too few periods leave its parameters NaN)."""
        return bool(np.all(np.isfinite(self.params)))

    def leads(self, spend: np.ndarray | float) -> np.ndarray:
        """Expected leads per period at `spend` under the point fit."""
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
        return {
            "channel": self.channel,
            "status": self.status,
            "reason": self.reason,
            "leads_per_period": {"base": b, "max": m, "half_saturation": h, "shape": k},
            "value_per_lead": float(self.value_per_lead),
            "current_spend": float(self.current_spend),
            "spend_range": [float(self.spend_min), float(self.spend_max)],
            "spend_cv": float(self.spend_cv),
            "periods": int(self.periods),
            "valued_leads": int(self.valued_leads),
            "r2": _finite(self.r2),
        }


@dataclass
class ResponseCurves:
    """The fitted curves of all paid channels as of a cutoff, with the period length they are expressed in."""

    as_of: pd.Timestamp
    period_days: float
    curves: dict[str, ChannelCurve] = field(default_factory=dict)

    def summary(self) -> dict:
        """All fits as a JSON-ready dict."""
        return {
            "as_of": self.as_of.isoformat(),
            "period_days": self.period_days,
            "channels": [c.summary() for c in self.curves.values()],
        }


def _hill_jacobian(
    log_spend: np.ndarray, theta: np.ndarray, jacobian: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (B, n) and Jacobian (B, n, 4) of the Hill curve in theta = (b, m, log h, log k), batched."""
    b, m, log_h, log_k = (theta[:, i : i + 1] for i in range(4))
    k = np.exp(log_k)
    gap = log_spend - log_h
    frac = expit(k * gap)  # s^k / (s^k + h^k)
    if not jacobian:
        return b + m * frac, None
    dfrac = frac * (1.0 - frac)
    jac = np.stack([np.ones_like(frac), frac, -m * k * dfrac, m * k * gap * dfrac], axis=-1)
    return b + m * frac, jac


@dataclass(frozen=True)
class _Problem:
    """One channel's least-squares problem: data rows (1 or B, n), box bounds and the weak priors."""

    log_spend: np.ndarray
    leads: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prior_centre: np.ndarray  # (4,): the log h and log k the priors pull towards (0 for b and m)
    prior_weight: np.ndarray  # (4,): noise sd / prior sd for log h and log k (0 for b and m: no prior)

    def rows(self, pick: np.ndarray) -> _Problem:
        """The problem restricted to some rows of a batch (data shared by all rows stays as it is)."""
        if len(self.leads) == 1:
            return self
        return replace(self, log_spend=self.log_spend[pick], leads=self.leads[pick])

    def cost(self, theta: np.ndarray) -> np.ndarray:
        """Penalised sum of squares of every row of theta (B,)."""
        pred, _ = _hill_jacobian(self.log_spend, theta, jacobian=False)
        penalty = (((theta - self.prior_centre) * self.prior_weight) ** 2).sum(axis=1)
        return ((pred - self.leads) ** 2).sum(axis=1) + penalty

    def normal_equations(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient half (J'r, (B, 4)) and Gauss-Newton matrix (J'J, (B, 4, 4)) of the penalised cost."""
        pred, jac = _hill_jacobian(self.log_spend, theta)
        jac_t = jac.transpose(0, 2, 1)
        weight2 = self.prior_weight**2
        grad = (jac_t @ (pred - self.leads)[..., None])[..., 0] + weight2 * (theta - self.prior_centre)
        return grad, jac_t @ jac + np.diag(weight2)


def _levenberg_marquardt(problem: _Problem, theta: np.ndarray, iterations: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the penalised sum of squares for a batch of starts/resamples at once, within the box bounds.

    A projected Levenberg-Marquardt with Marquardt's diagonal scaling, run on all rows still improving:
    hundreds of small fits in one numpy loop, which is what keeps a 200-resample bootstrap per channel cheap.
    """
    theta = np.clip(np.array(theta, dtype=float), problem.lower, problem.upper)
    cost = problem.cost(theta)
    damping = np.full(len(theta), 1e-2)
    active = np.arange(len(theta))
    for _ in range(iterations):
        if len(active) == 0:
            break
        sub = problem.rows(active)
        grad, hess = sub.normal_equations(theta[active])
        scale = np.diagonal(hess, axis1=1, axis2=2) + 1e-9
        system = hess + damping[active, None, None] * (scale[:, :, None] * np.eye(4))
        step = -np.linalg.solve(system, grad[..., None])[..., 0]
        trial = np.clip(theta[active] + step, problem.lower, problem.upper)
        trial_cost = sub.cost(trial)
        better = trial_cost < cost[active]
        gain = (cost[active] - trial_cost) / np.maximum(cost[active], 1e-12)
        theta[active[better]], cost[active[better]] = trial[better], trial_cost[better]
        damping[active] = np.where(better, damping[active] / 3.0, damping[active] * 4.0)
        done = (better & (gain < 1e-9)) | (damping[active] > 1e8)
        active = active[~done]
    return theta, cost


def _problem(spend: np.ndarray, leads: np.ndarray, prior_sd: tuple[float, float] | None) -> _Problem:
    """Bounds, prior centre and weights of one channel's fit, scaled to its spend and lead counts."""
    top = float(max(leads.max(), 1.0))
    floor = 1e-6 * float(spend.max())  # periods without spend: log(0) would break the fit
    paid = spend[spend > 0]
    slope, intercept = np.polyfit(spend, leads, 1) if np.ptp(spend) > 0 else (0.0, leads.mean())
    noise = float(max(np.std(leads - (intercept + slope * spend)), 0.5))
    return _Problem(
        log_spend=np.log(np.maximum(spend, floor))[None, :],
        leads=leads[None, :],
        lower=np.array([0.0, 0.0, np.log(0.05 * paid.min()), np.log(SHAPE_BOUNDS[0])]),
        upper=np.array([2.0 * top + 1.0, 50.0 * top + 1.0, np.log(20.0 * paid.max()), np.log(SHAPE_BOUNDS[1])]),
        prior_centre=np.array([0.0, 0.0, np.log(np.median(paid)), 0.0]),
        prior_weight=np.concatenate([[0.0, 0.0], noise / np.asarray(prior_sd or (np.inf, np.inf), dtype=float)]),
    )


def _fit_hill(spend: np.ndarray, leads: np.ndarray, prior_sd: tuple[float, float] | None) -> np.ndarray:
    """The penalised least-squares Hill fit (b, m, h, k) from several starts; the best start wins."""
    problem = _problem(spend, leads, prior_sd)
    mid = np.log(np.median(spend[spend > 0]))
    starts = np.array(
        [
            [0.5 * leads.min(), 2.0 * max(leads.max(), 1.0), mid + dh, np.log(k)]
            for dh in (-0.7, 0.0, 1.1)
            for k in (1.0, 2.0)
        ]
    )
    theta, cost = _levenberg_marquardt(problem, starts)
    return _params(theta[np.argmin(cost)])


def _params(theta: np.ndarray) -> np.ndarray:
    """(b, m, h, k) from the fit's (b, m, log h, log k), on the last axis."""
    return np.concatenate([theta[..., :2], np.exp(theta[..., 2:])], axis=-1)


def _r2(spend: np.ndarray, leads: np.ndarray, params: np.ndarray) -> float:
    """Share of the period-to-period variance in leads that the curve explains."""
    total = float(((leads - leads.mean()) ** 2).sum())
    return 1.0 - float(((leads - hill(spend, params)) ** 2).sum()) / total if total > 0 else float("nan")


def _bootstrap_curve(spend, leads, params, prior_sd, n_boot: int, rng) -> np.ndarray:
    """Refit the curve on `n_boot` resamples of the periods at once, warm-started at the point fit."""
    pick = rng.integers(0, len(spend), size=(n_boot, len(spend)))
    base = _problem(spend, leads, prior_sd)
    problem = _Problem(
        base.log_spend[0][pick], leads[pick], base.lower, base.upper, base.prior_centre, base.prior_weight
    )
    start = np.concatenate([params[:2], np.log(params[2:])])
    theta, _ = _levenberg_marquardt(problem, np.tile(start, (n_boot, 1)))
    return _params(theta)


def _bootstrap_mean(values: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """Bootstrap means of `values` (n_boot resamples)."""
    if len(values) == 0:
        return np.full(n_boot, np.nan)
    weights = rng.multinomial(len(values), np.full(len(values), 1.0 / len(values)), size=n_boot)
    return weights @ values / len(values)


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
    return FITTED, ""


def _boot_marginal(curve: ChannelCurve) -> np.ndarray:
    """Marginal ROI at current spend under every bootstrap draw."""
    slope = hill_slope(np.full(len(curve.boot_params), curve.current_spend), curve.boot_params)
    return slope * curve.boot_value_per_lead


def fit_channel_curve(
    channel: str,
    periods: pd.DataFrame,
    values: np.ndarray,
    current_spend: float,
    n_boot: int = 200,
    seed: int = 0,
    prior_sd: tuple[float, float] | None = PRIOR_SD,
) -> ChannelCurve:
    """Fit one channel's Hill curve to its periods (spend, leads) and bootstrap it; `values` are its leads' values."""
    rng = np.random.default_rng([seed, sum(map(ord, channel))])
    spend = periods["spend"].to_numpy(dtype=float)
    leads = periods["leads"].to_numpy(dtype=float)
    nan4 = np.full(4, np.nan)
    curve = ChannelCurve(
        channel=channel,
        params=nan4,
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
    )
    if curve.periods >= 4:
        curve.params = _fit_hill(spend, leads, prior_sd)
        curve.r2 = _r2(spend, leads, curve.params)
        curve.boot_params = _bootstrap_curve(spend, leads, curve.params, prior_sd, n_boot, rng)
    return curve


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
) -> ResponseCurves:
    """Fit every paid channel's response curve from complete periods before `as_of` (exclusive).

    Args:
        tables: needs customers (source_channel, created_at) and channel_spend.
        lead_values: customer_id -> expected value of a lead (currency); None uses `realised_lead_values`.
        n_boot, seed: bootstrap resamples over periods (and over leads for their mean value), seeded.
        min_cv, min_periods, min_leads: below these a channel is marked "insufficient evidence".
        prior_sd: sd of the weak priors on log h (around the median spend) and log k (around 1); None: no priors.
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
    out = ResponseCurves(as_of=as_of, period_days=period_days(periods))
    for channel, rows in periods.groupby("channel", sort=True):
        current = float(rows.loc[rows["period_start"] >= recent_start, "spend"].mean())
        if not np.isfinite(current) or current <= 0:
            continue  # not a paid channel now: nothing to move
        values = valued[valued_channel == channel].to_numpy(dtype=float)
        curve = fit_channel_curve(str(channel), rows, values, current, n_boot, seed, prior_sd)
        curve.status, curve.reason = _evidence(curve, min_cv, min_periods, min_leads)
        out.curves[str(channel)] = curve
    return out


# ------------------------------------------------------------------------------------------------- optimiser


def _finite(x: float) -> float | None:
    """A float for JSON, None when it is not finite."""
    x = float(x)
    return x if np.isfinite(x) else None


def _bounds(
    curves: ResponseCurves,
    names: list[str],
    max_shift: float,
    min_spend: Mapping[str, float] | None,
    max_spend: Mapping[str, float] | None,
    locked: Collection[str],
    extrapolate: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Per-channel lower and upper spend and why a channel cannot move (locked or insufficient evidence)."""
    lo, hi, frozen = [], [], {}
    for name in names:
        curve = curves.curves[name]
        cur = curve.current_spend
        low, high = cur * (1.0 - max_shift), cur * (1.0 + max_shift)
        if not extrapolate:
            # Do not bet on a part of the curve no period ever tried.
            low, high = max(low, min(curve.spend_min, cur)), min(high, max(curve.spend_max, cur))
        low = max(low, (min_spend or {}).get(name, 0.0))
        high = min(high, (max_spend or {}).get(name, np.inf))
        if name in locked:
            frozen[name] = LOCKED
        elif curve.status != FITTED:
            frozen[name] = INSUFFICIENT
        if name in frozen:
            low = high = cur
        if low > high + 1e-9:
            raise ValueError(f"{name}: the minimum spend {low:.2f} exceeds the maximum {high:.2f}")
        lo.append(low)
        hi.append(high)
    return np.array(lo), np.array(hi), frozen


def _total_value(curves: list[ChannelCurve], spend: np.ndarray) -> float:
    """Expected value per period of an allocation under the point fits (channels without a fit add nothing)."""
    return float(sum(c.value(s) for c, s in zip(curves, spend, strict=True) if c.fitted))


def _baseline(current: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """The current allocation scaled to `total` within the bounds: what the advice must not fall below."""
    if abs(current.sum() - total) <= 1e-9 * max(total, 1.0):
        return current.copy()
    return _project(current * total / max(current.sum(), 1e-12), lo, hi, total)


def _project(spend: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """The allocation within [lo, hi] summing to `total` closest to `spend` (bisection on a common shift)."""
    low, high = (lo - spend).min() - 1.0, (hi - spend).max() + 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if np.clip(spend + mid, lo, hi).sum() < total:
            low = mid
        else:
            high = mid
    return np.clip(spend + 0.5 * (low + high), lo, hi)


def _optimise(curves: list[ChannelCurve], lo: np.ndarray, hi: np.ndarray, total: float, seed: int) -> np.ndarray:
    """Maximise the fitted total value per period over [lo, hi] with the given total (SLSQP, several starts)."""
    scale = np.maximum(hi, 1e-9)  # optimise spend / upper bound: every variable in [0, 1]
    norm = max(_total_value(curves, (lo + hi) / 2), 1e-9)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        spend = x * scale
        value = _total_value(curves, spend)
        grad = np.array([float(c.marginal_roi(s)) if c.fitted else 0.0 for c, s in zip(curves, spend, strict=True)])
        grad = grad * scale
        return -value / norm, -grad / norm

    rng = np.random.default_rng(seed)
    starts = [_project((lo + hi) / 2, lo, hi, total)]
    starts += [_project(rng.uniform(lo, hi), lo, hi, total) for _ in range(6)]
    best, best_value = starts[0], _total_value(curves, starts[0])
    for start in starts:
        fit = minimize(
            objective,
            start / scale,
            jac=True,
            method="SLSQP",
            bounds=list(zip(lo / scale, hi / scale, strict=True)),
            constraints=[{"type": "eq", "fun": lambda x: x @ scale - total, "jac": lambda x: scale}],
            options={"maxiter": 200, "ftol": 1e-12},
        )
        spend = _project(np.clip(fit.x * scale, lo, hi), lo, hi, total)
        value = _total_value(curves, spend)
        if value > best_value:
            best, best_value = spend, value
    return best


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
    if max_shift < 0.0:
        raise ValueError("max_shift must be non-negative")
    unknown = set(locked) - set(curves.curves)
    if unknown:
        log.warning("locked channels without a fitted curve are ignored: %s", sorted(unknown))
    names = sorted(curves.curves)
    fits = [curves.curves[n] for n in names]
    current = np.array([c.current_spend for c in fits], dtype=float)
    total = float(current.sum() if total_budget is None else total_budget)
    lo, hi, frozen = _bounds(curves, names, max_shift, min_spend, max_spend, set(locked), extrapolate)
    if not lo.sum() - 1e-6 * total <= total <= hi.sum() + 1e-6 * total:
        raise ValueError(
            f"a total of {total:,.2f} per period cannot be reached within the channels' bounds "
            f"({lo.sum():,.2f} to {hi.sum():,.2f}); widen max_shift or the min/max spend"
        )
    baseline = _baseline(current, lo, hi, total)
    recommended = _optimise(fits, lo, hi, total, seed) if names else current
    baseline_value = _total_value(fits, baseline)
    if _total_value(fits, recommended) <= baseline_value + 1e-9 * abs(baseline_value):
        recommended = baseline  # no real gain: keep the current mix exactly
    rows = [_channel_row(c, r, frozen.get(c.channel)) for c, r in zip(fits, recommended, strict=True)]
    return {
        "as_of": curves.as_of.isoformat(),
        "period_days": curves.period_days,
        "constraints": {
            "total_budget": total,
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
        "marginal_roi_current": _finite(curve.marginal_roi(cur)) if fitted else None,
        "marginal_roi_recommended": _finite(curve.marginal_roi(recommended)) if fitted else None,
        "value_per_lead": _finite(curve.value_per_lead),
        "leads_current": _finite(curve.leads(cur)) if fitted else None,
        "leads_recommended": _finite(curve.leads(recommended)) if fitted else None,
        "expected_value_current": _finite(curve.value(cur)) if fitted else None,
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
    **constraints,
) -> dict:
    """Fit the response curves and recommend a budget in one call (see `fit_response_curves`, `recommend_budget`).

    `constraints` may hold the fit's options (n_boot, seed, min_cv, min_periods, min_leads, prior_sd) and the
    optimiser's (total_budget, max_shift, min_spend, max_spend, locked, extrapolate). Without `lead_values`
    a lead is valued at its realised first-365-day net revenue (`realised_lead_values`).
    """
    fit_options = {k: constraints.pop(k) for k in _FIT_KEYS if k in constraints}
    curves = fit_response_curves(tables, as_of, lead_values, **fit_options)
    if "seed" in fit_options:
        constraints.setdefault("seed", fit_options["seed"])
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
