"""The purchase family: recency, frequency, spend (sum, mean, max, trend, shares), order gaps and refunds
(see `training.features` for the definitions: refunds, positive spend, sample std of the gaps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from training.catalogue import Layout
from training.feature_arrays import DAY_NS, NEVER, Events, lookup
from training.feature_groups import age_days, buckets, count, distinct, min_age, ratio

if TYPE_CHECKING:
    from training.features import FeatureSpec

# Order age buckets (days): 180 and 360 serve the spend trend.
_ORDER_EDGES = (90, 180, 360, 365)
_I90, _I180, _I360, _I365 = range(4)


def first_order_age(cust: np.ndarray, age: np.ndarray, n: int) -> np.ndarray:
    """Age (int64 ns before the cutoff) of each customer's first order; 0 without one (nothing is newer)."""
    oldest = np.full(n, NEVER, np.int64)
    np.minimum.at(oldest, cust, -age)
    return np.where(oldest == NEVER, 0, -oldest)


def orders_first_age(orders: Events, n: int) -> np.ndarray:
    """`first_order_age` of the order rows (refunds aside), as the purchase features count them."""
    order = ~(orders.floats("amount") < 0)
    return first_order_age(orders.cust[order], orders.age[order], n)


def build_purchase_features(
    ev: Events, n: int, spec: FeatureSpec, lay: Layout
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Recency, frequency, spend (sum/mean/max, trend, shares), order gaps and refunds.

    Returns the columns and each customer's `first_order_age` (the life families read it).
    """
    amount = ev.floats("amount")
    refund = amount < 0  # NaN amounts count as orders of unknown value
    order = ~refund
    cust, age, amt = ev.cust[order], ev.age[order], amount[order]
    positive = np.where(amt > 0, amt, 0.0)
    first_age = first_order_age(cust, age, n)
    out, spend_total = _orders_and_spend(cust, age, amt, positive, n)
    out["days_since_first_order"] = np.where(first_age == 0, np.nan, first_age / DAY_NS)
    refunded = count(ev.cust[refund], n, -amount[refund])
    out["net_spend_total"] = count(cust, n, np.nan_to_num(amt)) - refunded
    out["refunds_total"] = count(ev.cust[refund], n)
    out["refund_amount_total"] = refunded
    out.update(_order_gaps(cust, ev.t[order], n))
    out.update(_spend_shares(ev, order, cust, positive, spend_total, n, spec, lay))
    return out, first_age


def _orders_and_spend(
    cust: np.ndarray, age: np.ndarray, amt: np.ndarray, positive: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Orders and positive spend in all and per window, largest orders, spend trend; and the total spend
    as a column vector (for the shares)."""
    out: dict[str, np.ndarray] = {}
    n_b = len(_ORDER_EDGES) + 1
    cell = cust * n_b + buckets(age, _ORDER_EDGES)
    counts = np.bincount(cell, minlength=n * n_b).reshape(n, n_b).cumsum(axis=1).astype(float)
    spend = np.bincount(cell, positive, minlength=n * n_b).reshape(n, n_b).cumsum(axis=1)
    paid = np.bincount(cell, (amt > 0).astype(float), minlength=n * n_b).reshape(n, n_b).cumsum(axis=1)
    out["days_since_last_order"] = age_days(min_age(cust, age, n))
    out["orders_total"] = counts[:, -1]
    out["orders_90d"] = counts[:, _I90]
    out["orders_365d"] = counts[:, _I365]
    out["spend_sum_total"] = spend[:, -1]
    out["spend_sum_365d"] = spend[:, _I365]
    out["spend_mean_total"] = ratio(spend[:, -1], paid[:, -1])
    out["spend_mean_365d"] = ratio(spend[:, _I365], paid[:, _I365])
    for suffix, rows in (("total", amt > 0), ("365d", (amt > 0) & (age <= 365 * DAY_NS))):
        top = np.full(n, -np.inf)
        np.maximum.at(top, cust[rows], amt[rows])
        out[f"spend_max_{suffix}"] = np.where(np.isfinite(top), top, np.nan)
    recent, before = spend[:, _I180], spend[:, _I360] - spend[:, _I180]
    out["spend_trend_180d"] = ratio(recent - before, recent + before)
    return out, spend[:, -1:]


def _order_gaps(cust: np.ndarray, t: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Mean and sample std of the days between consecutive orders (NaN with fewer than one or two gaps)."""
    by_time = np.lexsort((t, cust))
    c_sorted, t_sorted = cust[by_time], t[by_time]
    same = c_sorted[1:] == c_sorted[:-1]
    gap_cust = c_sorted[1:][same]
    gaps = np.diff(t_sorted)[same] / DAY_NS
    n_gaps = count(gap_cust, n)
    mean_gap = ratio(count(gap_cust, n, gaps), n_gaps)
    spread = count(gap_cust, n, (gaps - mean_gap[gap_cust]) ** 2)
    return {
        "order_gap_mean_days": mean_gap,
        "order_gap_std_days": np.sqrt(ratio(spread, np.where(n_gaps >= 2, n_gaps - 1, 0))),
    }


def _spend_shares(
    ev: Events,
    order: np.ndarray,
    cust: np.ndarray,
    positive: np.ndarray,
    spend_total: np.ndarray,
    n: int,
    spec: FeatureSpec,
    lay: Layout,
) -> dict[str, np.ndarray]:
    """Shares of positive spend per spec category and order channel, and the distinct categories bought."""
    out: dict[str, np.ndarray] = {}
    for name, known, cols in (
        ("product_category", spec.categories, lay.each("spend_share_category_{item}")),
        ("channel", spec.order_channels, lay.each("spend_share_channel_{item}")),
    ):
        codes, values = ev.codes(name)
        codes = codes[order]
        k = len(known) + 1
        slot = lookup(values, tuple(known), k - 1)[codes]
        share = np.bincount(cust * k + slot, positive, minlength=n * k).reshape(n, k)
        share = ratio(share, spend_total)
        for j, col in enumerate(cols):
            out[col] = share[:, j]
        if name == "product_category":
            out["distinct_categories"] = distinct(cust, codes, len(values), n)
    return out
