"""The profit objective, moves too small to make, and the advice's words and table, on curves with known parameters."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from marketing.advice import format_advice, recommend_budget
from marketing.optimiser import total_profit
from tests.marketing.test_budget import curve_set, make_curve, spends, three_channels


def spread_curve(name: str, params, value: float, current: float, seed: int = 0):
    """A curve whose bootstrap draws scatter around its point fit (so intervals have width)."""
    rng = np.random.default_rng(seed)
    curve = make_curve(name, params, value, current)
    boot = np.tile(curve.params, (200, 1)) * rng.lognormal(0.0, 0.1, (200, 4))
    return replace(curve, boot_params=boot, boot_value_per_lead=value * rng.lognormal(0.0, 0.1, 200))


def profit_of(curves, spend: dict[str, float], margin: float) -> float:
    names = sorted(spend)
    return total_profit([curves.curves[n] for n in names], np.array([spend[n] for n in names]), margin)


def test_profit_cuts_every_channel_when_no_marginal_return_pays_for_itself():
    curves, margin = three_channels(), 0.3  # marginal returns 0.08, 1.88, 0.74: x 0.3 all under 1
    advice = recommend_budget(curves, objective="profit", margin=margin)
    cur, rec = spends(advice, "current_spend"), spends(advice, "recommended_spend")
    for row in advice["channels"]:
        assert margin * row["marginal_roi_current"] < 1
        assert rec[row["channel"]] == pytest.approx(0.8 * cur[row["channel"]], rel=1e-6)  # down to the -20% limit
    assert advice["total"]["recommended_spend"] == pytest.approx(0.8 * advice["total"]["current_spend"])
    assert advice["constraints"]["objective"] == "profit" and advice["constraints"]["margin"] == margin
    assert advice["sentences"][0].startswith("spend 1,900 less per week in total (-20%)")
    assert "no channel returns its cost at the margin" in advice["sentences"][0]


def test_profit_adds_where_the_margin_weighted_return_beats_one_and_cuts_elsewhere():
    advice = recommend_budget(three_channels(), objective="profit", margin=1.0)
    moved = [r for r in advice["channels"] if r["status"] == "moved"]
    assert {r["channel"] for r in moved} == {"a", "b", "c"}
    for row in moved:
        assert (row["change"] > 0) == (row["marginal_roi_current"] > 1), row
    assert "add 20% to b" in " ".join(advice["sentences"])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("margin", [0.2, 0.6, 1.5])
def test_profit_is_never_below_the_current_profit_and_matches_a_grid_search(seed, margin):
    rng = np.random.default_rng(seed)
    curves = curve_set(
        *(
            make_curve(
                n,
                [rng.uniform(0, 5), rng.uniform(10, 60), rng.uniform(500, 5000), rng.uniform(0.6, 2.5)],
                rng.uniform(20, 600),
                rng.uniform(500, 5000),
            )
            for n in "abcd"
        )
    )
    advice = recommend_budget(curves, objective="profit", margin=margin, max_shift=0.3, min_move=0.0)
    cur, rec = spends(advice, "current_spend"), spends(advice, "recommended_spend")
    assert profit_of(curves, rec, margin) >= profit_of(curves, cur, margin) - 1e-9
    for name, c in curves.curves.items():
        grid = np.linspace(0.7, 1.3, 2001) * cur[name]
        best = (margin * c.value(grid) - grid).max()
        assert margin * c.value(rec[name]) - rec[name] >= best - 1e-6 * abs(best)
        assert 0.7 * cur[name] - 1e-6 <= rec[name] <= 1.3 * cur[name] + 1e-6
    total = advice["total"]
    assert total["expected_profit_recommended"] - total["expected_profit_current"] == pytest.approx(
        profit_of(curves, rec, margin) - profit_of(curves, cur, margin)
    )


def test_profit_totals_carry_80_percent_intervals_that_bracket_them():
    curves = curve_set(
        spread_curve("a", [2, 50, 1000, 1.1], 40.0, 4000.0), spread_curve("b", [1, 20, 4000, 1.3], 900.0, 3000.0, 1)
    )
    total = recommend_budget(curves, objective="profit", margin=0.5)["total"]
    for key in ("expected_profit_current", "expected_profit_recommended", "expected_profit_change"):
        assert total[f"{key}_low"] < total[f"{key}_high"]
        assert total[f"{key}_low"] <= total[key] <= total[f"{key}_high"], key
    assert json.dumps(total, allow_nan=False)


def test_profit_refuses_a_total_budget_and_a_margin_that_is_not_positive():
    with pytest.raises(ValueError, match="total_budget applies to the value objective"):
        recommend_budget(three_channels(), objective="profit", total_budget=9000.0)
    with pytest.raises(ValueError, match="margin must be a positive"):
        recommend_budget(three_channels(), objective="profit", margin=0.0)
    with pytest.raises(ValueError, match="objective must be one of"):
        recommend_budget(three_channels(), objective="revenue")


def nearly_balanced():
    """a gives its 20% (640), b takes its 20% (600): the 40 left over is a 1.6% move for c."""
    return curve_set(
        make_curve("a", [2, 50, 1000, 1.1], 40.0, 3200.0),
        make_curve("b", [1, 20, 4000, 1.3], 900.0, 3000.0),
        make_curve("c", [5, 30, 3000, 1.0], 250.0, 2500.0),
    )


def test_a_move_under_min_move_is_kept_and_the_value_total_still_holds():
    free = {r["channel"]: r for r in recommend_budget(nearly_balanced(), min_move=0.0)["channels"]}
    assert free["c"]["status"] == "moved" and free["c"]["change_pct"] == pytest.approx(0.016, abs=1e-4)
    advice = recommend_budget(nearly_balanced())  # default min_move 3%
    rows = {r["channel"]: r for r in advice["channels"]}
    assert rows["c"]["status"] == "kept" and rows["c"]["recommended_spend"] == rows["c"]["current_spend"]
    assert "min_move" in rows["c"]["reason"] and "+1.60%" in rows["c"]["reason"]
    assert rows["a"]["change"] == pytest.approx(-600.0, rel=1e-6)  # re-solved: a gives only what b takes
    assert rows["b"]["change"] == pytest.approx(600.0, rel=1e-6)
    assert advice["total"]["recommended_spend"] == pytest.approx(advice["total"]["current_spend"], rel=1e-9)
    assert advice["total"]["expected_uplift"] > 0
    assert any(s.startswith("keep c as it is: the best move") for s in advice["sentences"])


def test_a_move_under_min_move_is_kept_under_profit_too():
    curves = curve_set(make_curve("a", [0, 50, 1000, 1.0], 40.0, 1000.0))  # marginal return 0.5: profit peaks near
    margin = 1.0 / curves.curves["a"].marginal_roi(990.0)  # a margin that puts the optimum 1% below today
    assert recommend_budget(curves, objective="profit", margin=margin, min_move=0.0)["channels"][0]["status"] == "moved"
    row = recommend_budget(curves, objective="profit", margin=margin)["channels"][0]
    assert row["status"] == "kept" and row["change"] == 0.0


def test_sentences_compare_average_and_marginal_return_per_channel():
    curves = three_channels()
    advice = recommend_budget(curves)
    for name, c in curves.curves.items():
        cur = c.current_spend
        average = (c.leads(cur) - c.leads(0.0)) * c.value_per_lead / cur
        said = [s for s in advice["sentences"] if s.startswith(f"{name}: on average")]
        assert len(said) == 1
        assert f"returns {average:.2f} in lead value" in said[0]
        assert f"the next unit returns {float(c.marginal_roi(cur)):.2f}" in said[0]
    profit = recommend_budget(curves, objective="profit", margin=0.3)
    b = next(s for s in profit["sentences"] if s.startswith("b: at the 30% margin"))
    assert f"the next unit returns {0.3 * float(curves.curves['b'].marginal_roi(3000.0)):.2f}" in b


def test_table_shows_fit_quality_and_objective_within_130_characters():
    plain = three_channels()
    weak = replace(plain.curves["a"], r2=0.12, p_value=0.01, heldout_skill=0.1)
    good = replace(plain.curves["b"], r2=0.5, p_value=1e-6, heldout_skill=0.3)
    curves = curve_set(weak, good, plain.curves["c"])
    for objective in ("value", "profit"):
        advice = recommend_budget(curves, objective=objective, margin=0.3)
        table = format_advice(advice).split("\n\n")[0]
        assert max(len(line) for line in table.splitlines()) <= 130
        assert f"objective: {objective}" in table
        rows = {line.split()[0]: line for line in table.splitlines()[3:6]}
        assert " weak 0.12 " in rows["a"] and " good 0.50 " in rows["b"]
    assert advice["channels"][0]["fit_quality"] == "weak 0.12"


def test_under_profit_a_move_only_a_minority_of_bootstrap_fits_back_is_not_made():
    sure = make_curve("a", [0, 50, 1000, 1.0], 40.0, 1000.0)  # marginal return 0.5: x 4 = 2, worth adding
    boot = np.tile(sure.params, (10, 1))
    boot[::2, 1] = 10.0  # half the fits: a fifth of the response, x 4 = 0.4, not worth it
    doubtful = replace(sure, channel="b", boot_params=boot)
    rows = {
        r["channel"]: r for r in recommend_budget(curve_set(sure, doubtful), objective="profit", margin=4.0)["channels"]
    }
    assert rows["a"]["status"] == "moved" and rows["a"]["change_pct"] == pytest.approx(0.2)
    assert rows["b"]["status"] == "kept" and rows["b"]["change"] == 0.0
    assert "pays in only 50% of the bootstrap fits" in rows["b"]["reason"]
