"""The least-squares engine of the response curves: Hill curves fitted by a batched, bounded Levenberg-Marquardt.

Many fits run as one numpy loop (several starts, a grid of carryover rates, hundreds of bootstrap resamples),
each row with its own data, which is what keeps a bootstrap with carryover per channel cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit

SHAPE_BOUNDS = (0.5, 3.0)


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
class Problem:
    """A batch of least-squares problems: data rows (1 or B, n) each, box bounds and the weak priors."""

    log_spend: np.ndarray
    leads: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prior_centre: np.ndarray  # (4,): the log h and log k the priors pull towards (0 for b and m)
    prior_weight: np.ndarray  # (4,): noise sd / prior sd for log h and log k (0 for b and m: no prior)

    def rows(self, pick: np.ndarray) -> Problem:
        """The problem restricted to some rows of a batch (data shared by all rows stays as it is)."""
        log_spend = self.log_spend if len(self.log_spend) == 1 else self.log_spend[pick]
        leads = self.leads if len(self.leads) == 1 else self.leads[pick]
        return replace(self, log_spend=log_spend, leads=leads)

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


def levenberg_marquardt(
    problem: Problem, theta: np.ndarray, iterations: int = 200, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the penalised sum of squares for a batch of starts/resamples at once, within the box bounds.

    A projected Levenberg-Marquardt with Marquardt's diagonal scaling, run on all rows still improving:
    hundreds of small fits in one numpy loop. A row stops once a step lowers its cost by less than a share `tol`.
    Returns theta (B, 4) and the penalised cost (B,).
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
        done = (better & (gain < tol)) | (damping[active] > 1e8)
        active = active[~done]
    return theta, cost


def make_problem(
    spend: np.ndarray, leads: np.ndarray, prior_sd: tuple[float, float] | None, drive: np.ndarray | None = None
) -> Problem:
    """Bounds, prior centre and weights of one channel's fit, scaled to its spend and lead counts.

    `drive` (rows, n) is what the curve is a function of, one row per carryover rate (the adstocked spend);
    None: the same period's spend. Bounds and priors come from the spend itself either way.
    """
    top = float(max(leads.max(), 1.0))
    floor = 1e-6 * float(spend.max())  # periods without spend: log(0) would break the fit
    paid = spend[spend > 0]
    slope, intercept = np.polyfit(spend, leads, 1) if np.ptp(spend) > 0 else (0.0, leads.mean())
    noise = float(max(np.std(leads - (intercept + slope * spend)), 0.5))
    drive = spend[None, :] if drive is None else drive
    return Problem(
        log_spend=np.log(np.maximum(drive, floor)),
        leads=leads[None, :],
        lower=np.array([0.0, 0.0, np.log(0.05 * paid.min()), np.log(SHAPE_BOUNDS[0])]),
        upper=np.array([2.0 * top + 1.0, 50.0 * top + 1.0, np.log(20.0 * paid.max()), np.log(SHAPE_BOUNDS[1])]),
        prior_centre=np.array([0.0, 0.0, np.log(np.median(paid)), 0.0]),
        prior_weight=np.concatenate([[0.0, 0.0], noise / np.asarray(prior_sd or (np.inf, np.inf), dtype=float)]),
    )


def starts(spend: np.ndarray, leads: np.ndarray) -> np.ndarray:
    """Six starting points (b, m, log h, log k) around the median spend, gentle and steep."""
    mid = np.log(np.median(spend[spend > 0]))
    return np.array(
        [
            [0.5 * leads.min(), 2.0 * max(leads.max(), 1.0), mid + dh, np.log(k)]
            for dh in (-0.7, 0.0, 1.1)
            for k in (1.0, 2.0)
        ]
    )


def to_params(theta: np.ndarray) -> np.ndarray:
    """(b, m, h, k) from the fit's (b, m, log h, log k), on the last axis."""
    return np.concatenate([theta[..., :2], np.exp(theta[..., 2:])], axis=-1)


def to_theta(params: np.ndarray) -> np.ndarray:
    """The fit's (b, m, log h, log k) from (b, m, h, k), on the last axis."""
    return np.concatenate([params[..., :2], np.log(params[..., 2:])], axis=-1)


def r_squared(drive: np.ndarray, leads: np.ndarray, params: np.ndarray) -> float:
    """Share of the period-to-period variance in leads that the curve explains."""
    total = float(((leads - leads.mean()) ** 2).sum())
    return 1.0 - float(((leads - hill(drive, params)) ** 2).sum()) / total if total > 0 else float("nan")
