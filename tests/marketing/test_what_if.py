"""What-if of a spend plan: the curves' own figures at the plan, intervals around them, and refused plans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from marketing.response_curves import INSUFFICIENT
from marketing.what_if import format_what_if, what_if
from tests.marketing.test_budget import curve_set, make_curve
from tests.marketing.test_profit import spread_curve


def curves():
    return curve_set(
        spread_curve("search", [2, 50, 1000, 1.1], 40.0, 4000.0),
        spread_curve("event", [1, 20, 4000, 1.3], 900.0, 3000.0, seed=1),
        spread_curve("email", [5, 30, 3000, 1.0], 250.0, 2500.0, seed=2),
    )


def test_figures_are_the_curves_values_at_the_plan_and_unnamed_channels_stay():
    fitted = curves()
    result = what_if(fitted, {"search": 3000.0, "event": 3500.0}, margin=0.4)
    rows = {r["channel"]: r for r in result["channels"]}
    spend = {"search": 3000.0, "event": 3500.0, "email": 2500.0}
    for name, s in spend.items():
        c, row = fitted.curves[name], rows[name]
        assert row["spend"] == s and row["current_spend"] == c.current_spend
        assert row["leads"] == pytest.approx(float(c.leads(s)))
        assert row["value"] == pytest.approx(float(c.value(s)))
        assert row["value_change"] == pytest.approx(float(c.value(s) - c.value(c.current_spend)))
        assert row["profit"] == pytest.approx(0.4 * float(c.value(s)) - s)
    assert rows["email"]["value_change"] == 0.0 and rows["email"]["value_change_interval"] == [0.0, 0.0]
    total = result["total"]
    assert total["spend"] == 9000.0 and total["spend_change"] == -500.0
    assert total["value"] == pytest.approx(sum(float(fitted.curves[n].value(s)) for n, s in spend.items()))
    assert total["profit"] == pytest.approx(0.4 * total["value"] - 9000.0)
    assert json.dumps(result, allow_nan=False)


def test_intervals_bracket_the_figures():
    result = what_if(curves(), {"search": 3000.0, "event": 3500.0}, margin=0.4)
    for row in [*result["channels"], result["total"]]:
        for key in ("leads", "value", "profit"):
            low, high = row[f"{key}_interval"]
            assert low < high and low <= row[key] <= high, (row.get("channel"), key)
    for row in [r for r in result["channels"] if r["spend_change"]] + [result["total"]]:
        low, high = row["value_change_interval"]
        assert low <= row["value_change"] <= high


def test_a_plan_outside_the_spend_seen_is_flagged():
    result = what_if(curves(), {"event": 9000.0})  # make_curve saw 0.3x to 2x the current spend
    flags = {r["channel"]: r["outside_seen_range"] for r in result["channels"]}
    assert flags == {"email": False, "event": True, "search": False}
    assert result["outside_seen_range"] == ["event"]
    assert "profit" not in result["total"] and result["margin"] is None
    assert "warning: the plan leaves the spend range the data saw for event" in format_what_if(result)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"telepathy": 10.0}, "channels without spend history: \\['telepathy'\\]"),
        ({"search": -5.0}, "non-negative amount per period: \\['search'\\]"),
        ({"search": float("nan")}, "non-negative amount"),
    ],
)
def test_unknown_channels_and_negative_spend_are_refused_with_a_clear_message(plan, message):
    with pytest.raises(ValueError, match=message):
        what_if(curves(), plan)


def test_a_channel_without_a_curve_cannot_be_planned_but_still_costs_its_spend():
    blind = make_curve("radio", [np.nan] * 4, 10.0, 500.0, status=INSUFFICIENT)
    fitted = curve_set(*curves().curves.values(), blind)
    with pytest.raises(ValueError, match="no response curve to answer for \\['radio'\\]"):
        what_if(fitted, {"radio": 800.0})
    result = what_if(fitted, {"search": 3000.0}, margin=0.5)
    assert "leads" not in next(r for r in result["channels"] if r["channel"] == "radio")
    assert result["total"]["profit"] == pytest.approx(0.5 * result["total"]["value"] - result["total"]["spend"])
    assert "no curve" in format_what_if(result)
