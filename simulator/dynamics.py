"""The simulator's generative model: the hidden dynamics that both the simulation and its oracle use.

Time is in float days. The funnel is a continuous-time Markov chain over 12 states (five open stages,
each either progressing or stalled, then `won` and `lost`); a customer buys as a Poisson process with
seasonal intensity until a hidden exponential death time (non-contractual churn). Because every hidden
process is memoryless given the hidden traits, the oracle's probabilities at any cutoff are exact
functions of the state at that cutoff.
"""

from __future__ import annotations

import numpy as np

OPEN_STAGES = ("lead", "mql", "sql", "opportunity", "negotiation")
N_OPEN = len(OPEN_STAGES)
WON = 2 * N_OPEN  # state index of `won`
LOST = WON + 1  # state index of `lost`
N_STATES = LOST + 1

# Mean days in each open stage for a mid-sized account that is progressing.
STAGE_MEAN_DAYS = np.array([8.0, 12.0, 18.0, 22.0, 14.0])
STAGE_ADVANCE_LOGIT = np.array([0.9, 1.0, 0.9, 1.1, 1.5])
QUALITY_ADVANCE_EFFECT = 1.0
SIZE_SLOWDOWN = 0.3  # larger accounts move through stages more slowly
STALL_PROBABILITY = 0.18  # chance of stalling on entering a stage
STALL_RATE_FACTOR = 0.08  # a stalled lead leaves its stage this much more slowly
REGRESSION_PROBABILITY = 0.08  # from sql onwards, chance an exit goes one stage back
REOPEN_RATE = 0.0006  # per day, lost -> mql
REFUND_PROBABILITY = 0.03


def stage_of_state(state: np.ndarray) -> np.ndarray:
    """Observable stage index of a hidden state: 0-4 open stages, 5 won, 6 lost."""
    state = np.asarray(state)
    return np.where(state < WON, state % N_OPEN, state - N_OPEN)


def is_stalled(state: np.ndarray) -> np.ndarray:
    """Whether a hidden state is a stalled open stage."""
    state = np.asarray(state)
    return (state >= N_OPEN) & (state < WON)


def funnel_dynamics(quality: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit rates (n, 12) per day and jump probabilities (n, 12, 12) of each lead's funnel chain."""
    n = len(quality)
    rates = np.zeros((n, N_STATES))
    jumps = np.zeros((n, N_STATES, N_STATES))
    slow = np.exp(-SIZE_SLOWDOWN * size)[:, None]
    base = (1.0 / STAGE_MEAN_DAYS)[None, :] * slow
    rates[:, :N_OPEN] = base
    rates[:, N_OPEN:WON] = base * STALL_RATE_FACTOR
    rates[:, LOST] = REOPEN_RATE
    p_adv = 1.0 / (1.0 + np.exp(-(STAGE_ADVANCE_LOGIT[None, :] + QUALITY_ADVANCE_EFFECT * quality[:, None])))
    p_adv = np.clip(p_adv, 0.01, 0.9)
    p_stall = STALL_PROBABILITY
    for stage in range(N_OPEN):
        p_reg = REGRESSION_PROBABILITY if stage >= 2 else 0.0
        for stalled in (False, True):
            src = stage + (N_OPEN if stalled else 0)
            adv = p_adv[:, stage] * (0.5 if stalled else 1.0)
            if stage + 1 < N_OPEN:
                jumps[:, src, stage + 1] = adv * (1 - p_stall)
                jumps[:, src, stage + 1 + N_OPEN] = adv * p_stall
            else:
                jumps[:, src, WON] = adv
            if p_reg:
                jumps[:, src, stage - 1] = p_reg * (1 - p_stall)
                jumps[:, src, stage - 1 + N_OPEN] = p_reg * p_stall
            jumps[:, src, LOST] = 1.0 - adv - p_reg
    jumps[:, LOST, 1] = 1 - p_stall
    jumps[:, LOST, 1 + N_OPEN] = p_stall
    jumps[:, WON, WON] = 1.0
    return rates, jumps


def initial_state_distribution(n: int) -> np.ndarray:
    """State distribution of a newly created lead: stage `lead`, possibly stalled from the start."""
    dist = np.zeros((n, N_STATES))
    dist[:, 0] = 1 - STALL_PROBABILITY
    dist[:, N_OPEN] = STALL_PROBABILITY
    return dist


def daily_won_cdf(quality: np.ndarray, size: np.ndarray, start: np.ndarray, days: int) -> np.ndarray:
    """P(won by day d) for d = 0..days from a start distribution (n, 12); exact on the daily grid."""
    from scipy.linalg import expm
    from threadpoolctl import threadpool_limits

    rates, jumps = funnel_dynamics(quality, size)
    generator = rates[:, :, None] * (jumps - np.eye(N_STATES)[None])
    with threadpool_limits(1):  # thousands of tiny 12x12 products: BLAS threads only spin
        step = expm(generator)  # one-day transition matrices, batched
    out = np.empty((len(quality), days + 1))
    dist = start.copy()
    out[:, 0] = dist[:, WON]
    for d in range(1, days + 1):
        dist = np.matmul(dist[:, None, :], step)[:, 0, :]
        out[:, d] = dist[:, WON]
    return out


def seasonality(day_of_year: np.ndarray) -> np.ndarray:
    """Multiplicative seasonal purchase intensity: a mild yearly wave and a year-end peak."""
    doy = np.asarray(day_of_year, dtype=float)
    return 1.0 + 0.15 * np.sin(2 * np.pi * (doy - 100) / 365.25) + 0.45 * np.exp(-(((doy - 340) / 16) ** 2))


def remaining_purchase_mass(purchase_rate: np.ndarray, death_rate: np.ndarray, seasonal: np.ndarray) -> np.ndarray:
    """Expected orders of an alive customer from each grid day to the grid's end (n, days+1).

    `seasonal` holds the seasonal factor of each grid day; integration is daily (midpoint rule),
    backwards: G(d) = rate * s(d) * survival over the day + exp(-mu) * G(d+1).
    """
    n, days = len(purchase_rate), len(seasonal)
    out = np.zeros((n, days + 1))
    survive = np.exp(-death_rate)
    half = np.exp(-0.5 * death_rate)
    for d in range(days - 1, -1, -1):
        out[:, d] = purchase_rate * seasonal[d] * half + survive * out[:, d + 1]
    return out


def day_of_year(start_day_of_year: int, days: np.ndarray) -> np.ndarray:
    """Day of year (0-based, fractional) of a time given in days since a start on `start_day_of_year`."""
    return (start_day_of_year - 1 + np.asarray(days, dtype=float)) % 365.25
