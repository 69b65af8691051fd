"""Per-channel performance as of a cutoff: spend, leads, attributed conversions and value, CAC, ROI and trend.

Spend comes from `channel_spend` (complete periods only: a period counts once it has ended by `as_of`);
leads are customers by `source_channel` (first touch) and `created_at`; conversions and value are credited
over touch paths by an attribution method (`marketing.attribution`, default the Markov removal-effect model).
Money is in the export's currency; rates are per period of `channel_spend` (a week in the simulator).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from marketing.attribution import attribute

RECENT_DAYS = 91  # "recent" = the last 13 weeks


def spend_periods(channel_spend: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """Spend per channel and complete period before `as_of` (exclusive), with each period's end.

    A period ends where the channel's next one starts; the last one lasts the channel's median period.
    Periods still running at `as_of` are dropped, so a half-spent week never looks like a cheap one.
    Returns channel, period_start, period_end, spend (float, currency per period), sorted by channel and time.
    """
    as_of = pd.Timestamp(as_of)
    spend = channel_spend.loc[channel_spend["period_start"] < as_of, ["channel", "period_start", "spend"]]
    spend = spend.groupby(["channel", "period_start"], as_index=False, sort=True)["spend"].sum()
    nxt = spend.groupby("channel")["period_start"].shift(-1)
    length = (nxt - spend["period_start"]).groupby(spend["channel"]).transform("median")
    spend["period_end"] = nxt.fillna(spend["period_start"] + length.fillna(pd.Timedelta(days=7)))
    spend["spend"] = spend["spend"].astype(float)
    done = spend[spend["period_end"] <= as_of]
    return done[["channel", "period_start", "period_end", "spend"]].reset_index(drop=True)


def period_days(periods: pd.DataFrame) -> float:
    """The typical period length of `spend_periods` output in days (7 when there is none)."""
    if periods.empty:
        return 7.0
    return float(((periods["period_end"] - periods["period_start"]) / pd.Timedelta(days=1)).median())


def leads_per_period(customers: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Add the number of leads each channel brought in each period (by source channel and created_at)."""
    leads = customers.loc[customers["source_channel"].notna(), ["source_channel", "created_at"]]
    leads = leads.rename(columns={"source_channel": "channel"}).sort_values("created_at", kind="stable")
    # merge_asof needs one time resolution on both sides (exports come in ns, the simulator in us).
    leads["created_at"] = leads["created_at"].astype("datetime64[ns]")
    grid = periods[["channel", "period_start", "period_end"]].sort_values("period_start", kind="stable")
    grid = grid.astype({"period_start": "datetime64[ns]", "period_end": "datetime64[ns]"})
    matched = pd.merge_asof(
        leads, grid, left_on="created_at", right_on="period_start", by="channel", direction="backward"
    )
    matched = matched[matched["created_at"] < matched["period_end"]]
    counts = matched.groupby(["channel", "period_start"]).size().rename("leads")
    out = periods.join(counts, on=["channel", "period_start"])
    out["leads"] = out["leads"].fillna(0).astype(float)
    return out


def conversion_times(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | str, funnel: Funnel = DEFAULT_FUNNEL
) -> pd.Series:
    """customer_id -> first time it reached the won stage or ordered, before `as_of` (exclusive)."""
    as_of = pd.Timestamp(as_of)
    times = []
    events = tables.get("funnel_events")
    if events is not None:
        won = events[(events["stage"] == funnel.won) & (events["timestamp"] < as_of)]
        times.append(won[["customer_id", "timestamp"]])
    orders = tables.get("orders")
    if orders is not None:
        times.append(orders.loc[orders["timestamp"] < as_of, ["customer_id", "timestamp"]])
    if not times:
        return pd.Series(dtype="datetime64[ns]", name="converted_at")
    return pd.concat(times).groupby("customer_id")["timestamp"].min().rename("converted_at")


def _recent_window(periods: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the recent 13 weeks: ending where the last complete period ends (or at `as_of`)."""
    end = periods["period_end"].max() if not periods.empty else as_of
    return end - pd.Timedelta(days=RECENT_DAYS), end


def _trend(recent: pd.Series, before: pd.Series) -> pd.Series:
    """Relative change of the recent window against the one before (NaN when the earlier one is zero)."""
    before = before.reindex(recent.index).astype(float)
    return (recent / before.where(before > 0) - 1.0).astype(float)


def _spend_summary(periods: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Total spend, mean spend per period overall and in [start, end), and its trend, per channel."""
    by_channel = periods.groupby("channel")["spend"]
    recent = periods[(periods["period_start"] >= start) & (periods["period_end"] <= end)]
    span = end - start
    before = periods[(periods["period_start"] >= start - span) & (periods["period_end"] <= start)]
    out = pd.DataFrame(
        {
            "spend_total": by_channel.sum(),
            "spend_per_period": by_channel.mean(),
            "spend_per_period_13w": recent.groupby("channel")["spend"].mean(),
            "periods": by_channel.size().astype(float),
        }
    )
    out["spend_trend"] = _trend(recent.groupby("channel")["spend"].sum(), before.groupby("channel")["spend"].sum())
    return out


def _lead_summary(customers: pd.DataFrame, lead_values: pd.Series, start: pd.Timestamp, end: pd.Timestamp):
    """Leads in total and in the recent window, their trend, and the mean value of the leads, per channel."""
    leads = customers[customers["source_channel"].notna()]
    by = leads.groupby("source_channel")
    created = leads["created_at"]
    recent = leads[(created >= start) & (created < end)].groupby("source_channel").size()
    before = leads[(created >= start - (end - start)) & (created < start)].groupby("source_channel").size()
    values = leads["customer_id"].map(lead_values)
    out = pd.DataFrame(
        {
            "leads": by.size().astype(float),
            "leads_13w": recent.astype(float),
            "mean_lead_value": values.groupby(leads["source_channel"]).mean(),
        }
    )
    out["leads_13w"] = out["leads_13w"].fillna(0.0)
    out["leads_trend"] = _trend(out["leads_13w"], before.astype(float))
    return out.rename_axis("channel")


def realised_values(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | str) -> pd.Series:
    """customer_id -> net order amount before `as_of` (exclusive), 0 for customers without orders."""
    as_of = pd.Timestamp(as_of)
    customers = tables["customers"]
    ids = customers.loc[customers["created_at"] < as_of, "customer_id"]
    orders = tables.get("orders")
    if orders is None:
        return pd.Series(0.0, index=pd.Index(ids, name="customer_id"), name="value")
    amount = orders[orders["timestamp"] < as_of].groupby("customer_id")["amount"].sum()
    return amount.reindex(ids, fill_value=0.0).astype(float).rename("value")


def channel_performance(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    lead_values: pd.Series | None = None,
    method: str = "markov",
    channels: list[str] | None = None,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> pd.DataFrame:
    """One row per channel as of `as_of` (exclusive): spend, leads, credited conversions and value, CAC, ROI, trend.

    Args:
        tables: the export's tables (customers required; touchpoints, funnel_events, orders, channel_spend used
            when present).
        lead_values: customer_id -> expected value of each lead (e.g. P(conversion) x predicted CLV); None falls
            back to each customer's realised net revenue before `as_of`.
        method: attribution method crediting conversions and value (see `marketing.attribution.METHODS`).
        channels: the marketing channels a touch path may hold; default: every source channel and paid channel.
        funnel: the stage vocabulary; reaching its won stage (or a first order) is a conversion.
    Returns:
        Indexed by channel: spend_total, spend_per_period, spend_per_period_13w, spend_trend, periods, leads,
        leads_13w, leads_trend, conversions (credited), conversion_rate (credited conversions per lead),
        cac (spend_total / conversions), mean_lead_value (over the channel's own leads), value (credited),
        roi (value / spend_total). Trends compare the last 13 weeks with the 13 before (0.1 = +10%).
    """
    as_of = pd.Timestamp(as_of)
    customers = tables["customers"]
    customers = customers[customers["created_at"] < as_of]
    if lead_values is None:
        lead_values = realised_values(tables, as_of)
    spend = tables.get("channel_spend")
    periods = spend_periods(spend, as_of) if spend is not None else spend_periods(_empty_spend(), as_of)
    start, end = _recent_window(periods, as_of)
    if channels is None:
        channels = sorted(set(customers["source_channel"].dropna()) | set(periods["channel"]))
    out = _lead_summary(customers, lead_values, start, end).join(_spend_summary(periods, start, end), how="outer")
    out = out.join(_attributed(tables, customers, lead_values, as_of, method, channels, funnel), how="outer")
    return _ratios(out.reindex(sorted(set(out.index) | set(channels))))


def _attributed(tables, customers, lead_values, as_of, method, channels, funnel) -> pd.DataFrame:
    """Conversions and value credited to channels over touch paths (source channel only without touchpoints)."""
    converted_at = conversion_times(tables, as_of, funnel)
    ids = customers["customer_id"]
    converted = ids.isin(converted_at.index).astype(float).set_axis(ids.to_numpy())
    values = lead_values.reindex(ids.to_numpy()).fillna(0.0)
    touchpoints = tables.get("touchpoints")
    if touchpoints is None:
        # No touch history: every lead's path is its first touch, its source channel.
        touchpoints = customers.rename(columns={"created_at": "timestamp", "source_channel": "channel"})
        touchpoints = touchpoints[touchpoints["channel"].notna()]
    kwargs = {"method": method, "converted_at": converted_at, "channels": channels}
    return pd.DataFrame(
        {
            "conversions": attribute(touchpoints, converted, as_of, **kwargs),
            "value": attribute(touchpoints, values, as_of, **kwargs),
        }
    )


def _ratios(out: pd.DataFrame) -> pd.DataFrame:
    """Conversion rate, CAC and ROI from the summed columns (NaN where a denominator is zero)."""
    zero_filled = ["leads", "leads_13w", "conversions", "value", "spend_total"]
    out[zero_filled] = out[zero_filled].fillna(0.0)
    out["conversion_rate"] = out["conversions"] / out["leads"].where(out["leads"] > 0)
    out["cac"] = out["spend_total"] / out["conversions"].where(out["conversions"] > 0)
    out["roi"] = out["value"] / out["spend_total"].where(out["spend_total"] > 0)
    out.loc[out["spend_total"] <= 0, "cac"] = np.nan
    columns = [
        "spend_total",
        "spend_per_period",
        "spend_per_period_13w",
        "spend_trend",
        "periods",
        "leads",
        "leads_13w",
        "leads_trend",
        "conversions",
        "conversion_rate",
        "cac",
        "mean_lead_value",
        "value",
        "roi",
    ]
    return out[columns].rename_axis("channel").astype(float)


def _empty_spend() -> pd.DataFrame:
    """A channel_spend table with no rows, for exports without one."""
    return pd.DataFrame(
        {
            "period_start": pd.Series(dtype="datetime64[ns]"),
            "channel": pd.Series(dtype=object),
            "spend": pd.Series(dtype=float),
        }
    )
