"""Response-curve fits, the budget optimiser's guarantees, and advice judged by the simulator's true curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from marketing.advice import budget_advice, format_advice, log_channel_report, recommend_budget
from marketing.lead_values import realised_lead_values
from marketing.response_curves import (
    FITTED,
    INSUFFICIENT,
    ChannelCurve,
    ResponseCurves,
    fit_channel_curve,
    fit_response_curves,
    hill,
)
from simulator.simulate import SimConfig, simulate

AS_OF = pd.Timestamp("2024-12-31")
SIM_CUSTOMERS = 20_000
SIM_SEED = 11


# ------------------------------------------------------------------------------------------------- helpers


def make_curve(name: str, params, value: float, current: float, status: str = FITTED) -> ChannelCurve:
    """A channel curve with known parameters (bootstrap draws all equal to them)."""
    params = np.asarray(params, dtype=float)
    return ChannelCurve(
        channel=name,
        params=params,
        boot_params=np.tile(params, (10, 1)),
        value_per_lead=value,
        boot_value_per_lead=np.full(10, value),
        current_spend=current,
        spend_min=0.3 * current,
        spend_max=2.0 * current,
        spend_cv=0.3,
        periods=100,
        valued_leads=1000,
        r2=0.5,
        status=status,
    )


def curve_set(*curves: ChannelCurve) -> ResponseCurves:
    return ResponseCurves(as_of=AS_OF, period_days=7.0, curves={c.channel: c for c in curves})


def three_channels(status_b: str = FITTED) -> ResponseCurves:
    """a is saturated, b and c still return well: the optimum moves money from a."""
    return curve_set(
        make_curve("a", [2, 50, 1000, 1.1], 40.0, 4000.0),
        make_curve("b", [1, 20, 4000, 1.3], 900.0, 3000.0, status=status_b),
        make_curve("c", [5, 30, 3000, 1.0], 250.0, 2500.0),
    )


def fitted_value(curves: ResponseCurves, spend: dict[str, float]) -> float:
    return sum(float(curves.curves[n].value(s)) for n, s in spend.items())


def spends(advice: dict, key: str) -> dict[str, float]:
    return {r["channel"]: r[key] for r in advice["channels"]}


def true_values(truth: dict, advice: dict, max_shift: float = 0.2) -> tuple[float, float, float]:
    """True value per period of current, advised and optimal spend, exactly as judge_budget.py computes them."""
    tc = truth["channels"]
    rows = [r for r in advice["channels"] if r.get("current_spend", 0) and r["channel"] in tc]
    cur = np.array([r["current_spend"] for r in rows])
    rec = np.array([r["recommended_spend"] for r in rows])
    params = np.array([[tc[r["channel"]]["leads_per_period"][k] for k in ("base", "max", "half_saturation", "shape")]
                       for r in rows])  # fmt: skip
    per_lead = np.array([tc[r["channel"]]["value_per_lead"] for r in rows])

    def value(s):
        return float((per_lead * hill(np.maximum(s, 0), params)).sum())

    lo, hi = cur * (1 - max_shift), cur * (1 + max_shift)
    best = None
    for i in range(9):
        start = cur if i == 0 else np.clip(cur * np.random.default_rng(i - 1).uniform(0.8, 1.2, len(cur)), lo, hi)
        start = start * cur.sum() / start.sum()
        fit = minimize(lambda s: -value(s), start, bounds=list(zip(lo, hi, strict=True)), method="SLSQP",
                       constraints=[{"type": "eq", "fun": lambda s: s.sum() - cur.sum()}])  # fmt: skip
        if fit.success and (best is None or fit.fun < best.fun):
            best = fit
    return value(cur), value(rec), -best.fun


# ------------------------------------------------------------------------------------------- fitting curves


def test_fit_recovers_known_parameters_from_noise_free_data():
    truth = np.array([3.0, 45.0, 3000.0, 1.2])
    spend = np.geomspace(300, 15000, 60)
    periods = pd.DataFrame({"spend": spend, "leads": hill(spend, truth)})
    curve = fit_channel_curve("search", periods, np.full(100, 250.0), 3000.0, n_boot=20, prior_sd=None)
    np.testing.assert_allclose(curve.params, truth, rtol=1e-3)
    np.testing.assert_allclose(curve.boot_params, np.tile(truth, (20, 1)), rtol=1e-3)
    assert curve.r2 == pytest.approx(1.0)
    assert curve.marginal_roi(3000.0) == pytest.approx(250.0 * 45 * 1.2 * 0.25 / 3000, rel=1e-3)


def test_realised_lead_values_count_the_first_year_only():
    tables = {
        "customers": pd.DataFrame(
            {
                "customer_id": ["old", "quiet", "recent"],
                "created_at": pd.to_datetime(["2023-01-01", "2023-06-01", "2024-06-01"]),
                "source_channel": ["search", "event", "social"],
            }
        ),
        "orders": pd.DataFrame(
            {
                "customer_id": ["old", "old", "old", "recent"],
                "order_id": ["o1", "o2", "o3", "o4"],
                "timestamp": pd.to_datetime(["2023-06-01", "2023-07-01", "2024-01-05", "2024-07-01"]),
                "amount": [100.0, -20.0, 50.0, 70.0],  # a refund counts; the 2024 order is past the first year
            }
        ),
    }
    got = realised_lead_values(tables, AS_OF)
    expected = pd.Series({"old": 80.0, "quiet": 0.0}, name="lead_value").rename_axis("customer_id")
    pd.testing.assert_series_equal(got, expected)


def synthetic_tables(weeks: int = 60, seed: int = 0) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Leads drawn from known curves: search's spend varies, email's is the same every week."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2023-09-03", periods=weeks, freq="7D")
    plans = {
        "search": (3000 * rng.uniform(0.5, 1.5, weeks), [3, 40, 3000, 1.2]),
        "email": (np.full(weeks, 700.0), [8, 25, 700, 1.0]),
    }
    spend_rows, customers = [], []
    for channel, (spend, params) in plans.items():
        counts = rng.poisson(hill(spend, np.array(params, dtype=float)))
        for start, s, n in zip(starts, spend, counts, strict=True):
            spend_rows.append((start, channel, s))
            customers += [(start + pd.Timedelta(hours=float(h)), channel) for h in rng.uniform(0, 167, n)]
    frame = pd.DataFrame(customers, columns=["created_at", "source_channel"])
    frame.insert(0, "customer_id", [f"C{i}" for i in range(len(frame))])
    values = pd.Series(np.where(frame["source_channel"] == "search", 300.0, 200.0), index=frame["customer_id"])
    spend = pd.DataFrame(spend_rows, columns=["period_start", "channel", "spend"])
    return {"customers": frame, "channel_spend": spend}, values


def test_channel_whose_spend_never_varied_is_not_moved():
    tables, values = synthetic_tables()
    as_of = pd.Timestamp("2024-12-31")
    curves = fit_response_curves(tables, as_of, values, n_boot=50)
    assert curves.curves["email"].status == INSUFFICIENT
    assert "spend hardly varied" in curves.curves["email"].reason
    assert curves.curves["search"].status == FITTED
    advice = recommend_budget(curves)
    email = next(r for r in advice["channels"] if r["channel"] == "email")
    assert email["status"] == INSUFFICIENT
    assert email["recommended_spend"] == email["current_spend"]
    assert any(s.startswith("keep email as it is: spend hardly varied") for s in advice["sentences"])


def test_channel_whose_leads_ignore_spend_is_not_moved():
    """Valuable leads arriving at random, whatever the spend: no basis to move money in or out."""
    rng = np.random.default_rng(1)
    starts = pd.date_range("2023-09-03", periods=60, freq="7D")
    spend = 3000 * rng.uniform(0.5, 1.5, 60)
    created = [s + pd.Timedelta(hours=float(h)) for s, n in zip(starts, rng.poisson(3.0, 60), strict=True)
               for h in rng.uniform(0, 167, n)]  # fmt: skip
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(created))], "created_at": created})
    customers["source_channel"] = "event"
    tables = {
        "customers": customers,
        "channel_spend": pd.DataFrame({"period_start": starts, "channel": "event", "spend": spend}),
    }
    values = pd.Series(20_000.0, index=customers["customer_id"])
    curve = fit_response_curves(tables, AS_OF, values, n_boot=100).curves["event"]
    assert curve.status == INSUFFICIENT
    assert curve.reason.startswith("the data hardly pin its return down")


def test_too_few_periods_is_insufficient_evidence():
    tables, values = synthetic_tables(weeks=8)
    curves = fit_response_curves(tables, pd.Timestamp("2024-12-31"), values, n_boot=10)
    assert all(c.status == INSUFFICIENT and "complete periods" in c.reason for c in curves.curves.values())
    advice = recommend_budget(curves)
    assert spends(advice, "recommended_spend") == spends(advice, "current_spend")
    assert json.loads(json.dumps(advice, allow_nan=False))["total"]["expected_uplift"] == 0


# ----------------------------------------------------------------------------------------------- optimiser


@pytest.mark.parametrize("max_shift", [0.1, 0.2, 0.5])
def test_optimiser_keeps_total_and_shift_and_finds_the_best_allocation(max_shift):
    curves = three_channels()
    advice = recommend_budget(curves, max_shift=max_shift)
    cur, rec = spends(advice, "current_spend"), spends(advice, "recommended_spend")
    assert sum(rec.values()) == pytest.approx(sum(cur.values()), rel=1e-9)
    for name in cur:
        assert cur[name] * (1 - max_shift) - 1e-6 <= rec[name] <= cur[name] * (1 + max_shift) + 1e-6
    # Brute force over a grid of the two free channels (c takes the rest) finds nothing better.
    fa, fb = np.meshgrid(*[np.linspace(1 - max_shift, 1 + max_shift, 201)] * 2)
    grid = {"a": fa.ravel() * cur["a"], "b": fb.ravel() * cur["b"]}
    grid["c"] = sum(cur.values()) - grid["a"] - grid["b"]
    feasible = np.abs(grid["c"] / cur["c"] - 1) <= max_shift
    best = sum(curves.curves[n].value(grid[n][feasible]) for n in grid).max()
    assert fitted_value(curves, rec) >= best - 1e-6 * abs(best)
    assert advice["total"]["expected_uplift"] > 0
    assert rec["a"] < cur["a"]


def test_locked_and_insufficient_channels_stay_where_they_are():
    curves = three_channels(status_b=INSUFFICIENT)
    advice = recommend_budget(curves, locked=["c"])
    status = {r["channel"]: r["status"] for r in advice["channels"]}
    assert status == {"a": "kept", "b": INSUFFICIENT, "c": "locked"}
    assert spends(advice, "recommended_spend") == spends(advice, "current_spend")
    assert advice["total"]["expected_uplift"] == 0


def test_min_and_max_spend_bound_each_channel():
    advice = recommend_budget(three_channels(), min_spend={"a": 3900.0}, max_spend={"b": 3100.0})
    rec = spends(advice, "recommended_spend")
    assert rec["a"] >= 3900.0 - 1e-6
    assert rec["b"] <= 3100.0 + 1e-6


def test_a_new_total_is_allocated_and_never_worse_than_scaling_the_current_mix():
    curves = three_channels()
    advice = recommend_budget(curves, total_budget=10_000.0)
    rec = spends(advice, "recommended_spend")
    assert sum(rec.values()) == pytest.approx(10_000.0)
    scaled = {n: s * 10_000.0 / 9_500.0 for n, s in spends(advice, "current_spend").items()}
    assert fitted_value(curves, rec) >= fitted_value(curves, scaled) - 1e-6
    assert any(s.startswith("add ") for s in advice["sentences"])


def test_a_total_out_of_reach_is_an_error():
    with pytest.raises(ValueError, match="cannot be reached within the channels' bounds"):
        recommend_budget(three_channels(), total_budget=20_000.0)


def test_when_current_spend_is_already_best_nothing_moves():
    # Two identical channels at the same spend: any shift loses value on concave curves.
    curves = curve_set(
        make_curve("a", [2, 50, 1000, 1.0], 40.0, 1000.0), make_curve("b", [2, 50, 1000, 1.0], 40.0, 1000.0)
    )
    advice = recommend_budget(curves)
    assert advice["total"]["expected_uplift"] >= 0
    assert advice["total"]["expected_uplift"] == pytest.approx(0.0, abs=1e-6)
    assert advice["sentences"][0].startswith("keep the current allocation")


def test_advice_is_json_ready_and_explained():
    advice = recommend_budget(three_channels())
    text = json.dumps(advice, allow_nan=False)
    assert json.loads(text)["period_days"] == 7.0
    row = advice["channels"][0]
    for key in ("channel", "current_spend", "recommended_spend", "change", "change_pct", "marginal_roi_current",
                "marginal_roi_recommended", "expected_value_change", "expected_value_change_low",
                "expected_value_change_high", "status"):  # fmt: skip
        assert key in row
    assert advice["sentences"][0].startswith("move ")
    assert "of a spend" in advice["sentences"][0] and "the next unit of money returns" in advice["sentences"][0]
    table = format_advice(advice)
    assert "Budget advice per week" in table and advice["sentences"][0] in table


# ------------------------------------------------------------------------------------ simulated scenarios


@pytest.fixture(scope="module")
def simulated():
    """Simulate each scenario once per module (20k customers; BLAS on one thread keeps the oracle fast)."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS before limiting its threads)
    from threadpoolctl import threadpool_limits

    cache = {}

    def get(scenario: str):
        if scenario not in cache:
            with threadpool_limits(1):
                cache[scenario] = simulate(SimConfig(customers=SIM_CUSTOMERS, seed=SIM_SEED, scenario=scenario))
        return cache[scenario]

    return get


@pytest.fixture(scope="module")
def advised(simulated):
    cache = {}

    def get(scenario: str):
        if scenario not in cache:
            sim = simulated(scenario)
            cache[scenario] = budget_advice(sim.tables, AS_OF)
        return cache[scenario]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["default", "volume_vs_value", "saturated"])
def test_advice_captures_most_of_the_true_optimum(simulated, advised, scenario):
    advice = advised(scenario)
    current, recommended, optimum = true_values(simulated(scenario).truth_channels, advice)
    assert recommended >= current
    assert recommended - current >= 0.8 * (optimum - current)
    assert sum(spends(advice, "recommended_spend").values()) == pytest.approx(advice["total"]["current_spend"])


@pytest.mark.slow
def test_volume_vs_value_moves_money_from_social_to_event(advised):
    change = spends(advised("volume_vs_value"), "change")
    assert change["event"] > 0
    assert change["social"] < 0


@pytest.mark.slow
def test_saturated_takes_money_from_social(advised):
    assert spends(advised("saturated"), "change")["social"] < 0


@pytest.mark.slow
def test_advice_reads_nothing_at_or_after_as_of(simulated, advised):
    """The same advice from the full simulated history and from the history cut at as_of."""
    sim = simulated("default")
    time_column = {"customers": "created_at", "channel_spend": "period_start"}
    cut = {
        name: frame[frame[time_column.get(name, "timestamp")] < AS_OF].reset_index(drop=True)
        for name, frame in sim.tables.items()
    }
    assert budget_advice(cut, AS_OF) == advised("default")


def test_log_channel_report_logs_table_advice_and_chart(tmp_path):
    import mlflow

    tables, values = synthetic_tables()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with pytest.raises(RuntimeError, match="active MLflow run"):
            log_channel_report(tables, AS_OF, values)
        with mlflow.start_run() as run:
            advice = log_channel_report(tables, AS_OF, values, n_boot=50)
        client = mlflow.MlflowClient()
        logged = {f.path for f in client.list_artifacts(run.info.run_id, "channels")}
        assert logged == {
            "channels/performance.csv",
            "channels/budget_advice.json",
            "channels/budget_advice.txt",
            "channels/budget_spend.png",
        }
        assert client.get_run(run.info.run_id).data.metrics["budget_expected_uplift"] == pytest.approx(
            advice["total"]["expected_uplift"]
        )
    finally:
        mlflow.set_tracking_uri(previous)
