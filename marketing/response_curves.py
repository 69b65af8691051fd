"""Diminishing-returns response curves of leads to spend per paid channel, fitted with their uncertainty.

Per paid channel, leads per period (by source channel) follow a Hill curve of that period's spend,
`leads(s) = b + m * s^k / (s^k + h^k)`, fitted by bounded least squares over complete periods before `as_of`,
with uncertainty from a seeded bootstrap over periods (and over the channel's leads for their mean value).
Value per period is `leads(s) * value_per_lead`. A channel whose spend hardly varied, or whose curve is not
supported by the data, is marked "insufficient evidence". Money is in the export's currency, per period
(`period_days`, a week in the simulator); "current" spend is the mean of the last 13 weeks' periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.special import expit

from marketing.channels import RECENT_DAYS, leads_per_period, period_days, spend_periods
from marketing.lead_values import realised_lead_values

# The status of a channel in the fit (fitted, insufficient evidence) and in the advice (locked, moved, kept).
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


def finite_or_none(x: float) -> float | None:
    """A float for JSON, None when it is not finite."""
    x = float(x)
    return x if np.isfinite(x) else None


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
            "r2": finite_or_none(self.r2),
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
