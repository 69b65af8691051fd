"""Credit conversions and value to the channels on each customer's touch path.

A customer's path is its touchpoints strictly before its conversion time (when it converted and the time
is known) or strictly before `as_of` (otherwise), in time order. Rule-based methods split each customer's
outcome over its own path (first touch, last touch, linear, time decay); the data-driven default is a
first-order Markov chain over channels whose removal effects share out the total outcome (Anderl et al.,
"Mapping the customer journey: a graph-based framework for online attribution modeling", 2016).
Every method returns channel -> credited amount summing to the outcomes' total; customers with an outcome
but no touch on their path are credited to `NO_TOUCH`.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

METHODS: tuple[str, ...] = ("markov", "first_touch", "last_touch", "linear", "time_decay")
NO_TOUCH = "(no touch)"
START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def touch_paths(
    touchpoints: pd.DataFrame,
    customers: pd.Index,
    as_of: pd.Timestamp,
    converted_at: pd.Series | None = None,
    channels: Collection[str] | None = None,
) -> pd.DataFrame:
    """Each customer's touches before its path end (conversion time, else `as_of`, exclusive), in time order.

    Returns customer_id, timestamp, channel and `end` (the path's end time), sorted by customer then time.
    """
    as_of = pd.Timestamp(as_of)
    tp = touchpoints.loc[touchpoints["customer_id"].isin(customers), ["customer_id", "timestamp", "channel"]]
    if channels is not None:
        tp = tp[tp["channel"].isin(list(channels))]
    end = pd.Series(as_of, index=pd.Index(customers, name="customer_id"), dtype="datetime64[ns]")
    if converted_at is not None:
        known = pd.to_datetime(converted_at.reindex(end.index)).astype("datetime64[ns]")
        end = known.where(known.notna() & (known < as_of), end)
    tp = tp.assign(end=tp["customer_id"].map(end))
    tp = tp[tp["timestamp"] < tp["end"]]
    return tp.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


def touch_weights(paths: pd.DataFrame, method: str, half_life_days: float = 7.0) -> pd.Series:
    """The share of its customer's outcome each touch of `paths` receives under a rule-based method."""
    by_customer = paths.groupby("customer_id", sort=False)
    if method == "first_touch":
        return (by_customer.cumcount() == 0).astype(float)
    if method == "last_touch":
        return (by_customer.cumcount(ascending=False) == 0).astype(float)
    if method == "linear":
        return 1.0 / by_customer["channel"].transform("size").astype(float)
    if method == "time_decay":
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        age_days = (paths["end"] - paths["timestamp"]) / pd.Timedelta(days=1)
        # Measure age from each path's newest touch: the normalised weights are the same, and none underflows to 0.
        age_days = age_days - age_days.groupby(paths["customer_id"], sort=False).transform("min")
        raw = np.exp2(-age_days / half_life_days)
        return raw / raw.groupby(paths["customer_id"], sort=False).transform("sum")
    raise ValueError(f"unknown rule-based method {method!r}")


def _no_touch_credit(paths: pd.DataFrame, outcomes: pd.Series) -> float:
    """The outcome total of customers whose path is empty (they get no channel credit)."""
    return float(outcomes[~outcomes.index.isin(paths["customer_id"].unique())].sum())


def _rule_based(paths: pd.DataFrame, outcomes: pd.Series, method: str, half_life_days: float) -> pd.Series:
    """Credit each customer's outcome to its touches by a rule, then sum per channel."""
    weights = touch_weights(paths, method, half_life_days)
    credit = weights.to_numpy() * paths["customer_id"].map(outcomes).to_numpy(dtype=float)
    return pd.Series(credit, index=paths["channel"].to_numpy()).groupby(level=0).sum()


def transition_counts(paths: pd.DataFrame, converted: pd.Series) -> pd.DataFrame:
    """Counts of (from, to) state pairs over all paths, with start, conversion and null states added.

    `converted` is customer_id -> bool; every path runs start -> touches -> conversion or null.
    """
    same = paths["customer_id"].eq(paths["customer_id"].shift())
    prev = paths["channel"].shift().where(same, START)
    inner = pd.DataFrame({"from": prev.to_numpy(dtype=object), "to": paths["channel"].to_numpy(dtype=object)})
    last = paths.groupby("customer_id", sort=False).tail(1)
    ends = np.where(last["customer_id"].map(converted).fillna(False).to_numpy(dtype=bool), CONVERSION, NULL)
    exit_ = pd.DataFrame({"from": last["channel"].to_numpy(dtype=object), "to": ends.astype(object)})
    pairs = pd.concat([inner, exit_], ignore_index=True)
    return pairs.groupby(["from", "to"], sort=True).size().rename("count").reset_index()


def _conversion_rewards(paths: pd.DataFrame, outcomes: pd.Series) -> pd.Series:
    """Mean outcome of the converting paths by their last channel: the reward of that channel's exit to conversion."""
    last = paths.groupby("customer_id", sort=False).tail(1)
    value = last["customer_id"].map(outcomes).to_numpy(dtype=float)
    ends = pd.Series(value, index=last["channel"].to_numpy())
    return ends[ends > 0].groupby(level=0).mean()


def _expected_value(matrix: np.ndarray, reward: np.ndarray, keep: np.ndarray) -> float:
    """Expected reward from start (row 0) of an absorbing chain restricted to the `keep` transient states.

    Transitions into dropped states fall to null (they earn nothing): V = (I - Q)^-1 r on kept states.
    """
    q = matrix[np.ix_(keep, keep)]
    values = np.linalg.solve(np.eye(len(keep)) - q, reward[keep])
    return float(values[0])


def markov_removal_effects(paths: pd.DataFrame, outcomes: pd.Series) -> pd.Series:
    """Removal effect of each channel: the share of expected outcome lost when the channel is taken out.

    States are start, the channels, conversion and null; transition probabilities are first-order
    frequencies of consecutive touches. Exits to conversion earn the mean outcome of the paths that made
    them (1 for 0/1 conversions), so value outcomes weight channels by the value of the conversions they lead to.
    """
    converted = outcomes > 0
    counts = transition_counts(paths, converted)
    channels = sorted(set(counts["from"]) - {START})
    states = [START, *channels]
    index = {s: i for i, s in enumerate(states)}
    matrix = np.zeros((len(states), len(states)))
    transient = counts[counts["to"].isin(states)]
    np.add.at(
        matrix,
        (transient["from"].map(index).to_numpy(), transient["to"].map(index).to_numpy()),
        transient["count"].to_numpy(dtype=float),
    )
    to_conv = counts[counts["to"] == CONVERSION].set_index("from")["count"].reindex(states, fill_value=0)
    totals = counts.groupby("from")["count"].sum().reindex(states, fill_value=0).to_numpy(dtype=float)
    totals = np.where(totals > 0, totals, 1.0)
    matrix /= totals[:, None]
    rewards = _conversion_rewards(paths, outcomes).reindex(states, fill_value=0.0).to_numpy()
    reward = to_conv.to_numpy(dtype=float) / totals * rewards
    everything = np.arange(len(states))
    base = _expected_value(matrix, reward, everything)
    if base <= 0:
        return pd.Series(0.0, index=pd.Index(channels, name="channel"))
    effects = {c: 1.0 - _expected_value(matrix, reward, everything[everything != index[c]]) / base for c in channels}
    return pd.Series(effects, name="removal_effect").rename_axis("channel").clip(lower=0.0)


def _markov(paths: pd.DataFrame, outcomes: pd.Series) -> pd.Series:
    """Share the pathed customers' outcome total by normalised Markov removal effects."""
    effects = markov_removal_effects(paths, outcomes)
    pathed = outcomes[outcomes.index.isin(paths["customer_id"].unique())]
    if effects.sum() <= 0:
        return pd.Series(0.0, index=effects.index)
    return effects / effects.sum() * float(pathed.sum())


def attribute(
    touchpoints: pd.DataFrame,
    outcomes: pd.Series,
    as_of: pd.Timestamp | str,
    method: str = "markov",
    converted_at: pd.Series | None = None,
    channels: Collection[str] | None = None,
    half_life_days: float = 7.0,
) -> pd.Series:
    """Credit `outcomes` (customer_id -> value, or 1/0 conversion) to channels over each customer's touch path.

    Args:
        touchpoints: customer_id, timestamp, channel (extra columns ignored).
        outcomes: what to share out, per customer; only these customers' paths are read.
        as_of: exclusive cutoff of every path.
        method: one of `METHODS`; "markov" (data-driven, default), "first_touch", "last_touch", "linear",
            or "time_decay" (weight halves every `half_life_days` before the path end).
        converted_at: customer_id -> conversion time; a converted customer's path ends there (exclusive).
        channels: keep only touches on these channels (e.g. marketing channels), if given.
    Returns:
        channel -> credited amount (same unit as `outcomes`), summing to `outcomes.sum()`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {list(METHODS)}")
    outcomes = outcomes.astype(float).fillna(0.0)
    outcomes = outcomes.groupby(level=0).sum()
    paths = touch_paths(touchpoints, outcomes.index, pd.Timestamp(as_of), converted_at, channels)
    rule = _markov if method == "markov" else lambda p, o: _rule_based(p, o, method, half_life_days)
    credit = rule(paths, outcomes)
    unpathed = _no_touch_credit(paths, outcomes)
    if unpathed:
        credit = pd.concat([credit, pd.Series({NO_TOUCH: unpathed})])
    return credit.rename("credit").rename_axis("channel").sort_index()


def compare_attribution(
    touchpoints: pd.DataFrame,
    outcomes: pd.Series,
    as_of: pd.Timestamp | str,
    methods: Collection[str] = METHODS,
    **kwargs,
) -> pd.DataFrame:
    """Credits of every method side by side (channel x method), to show how much the choice of rule matters."""
    frame = pd.concat({m: attribute(touchpoints, outcomes, as_of, method=m, **kwargs) for m in methods}, axis=1)
    return frame.fillna(0.0).rename_axis("channel")
