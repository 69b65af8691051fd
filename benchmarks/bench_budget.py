"""Budget advice against the simulator's true response curves: every scenario, objective and margin.

For every seed x scenario: simulate, write the export and its truth to a temporary directory, load it through the
data contract as of the simulator's `as_of`, fit the response curves once (realised first-year lead values), then
advise under each objective (`value`: same total; `profit` at each margin: total free). Each advice is valued with the
true curves of `truth/channels.json`, against the true optimum under the same bounds (each channel within
current x (1 +- max_shift)): the captured share of the optimum's gain, and whether the advice ever loses. On the
scenarios with carryover, the same-week response fit (`carryover=False`) is advised and valued beside it. An
external judge script, when given (`--judge`), is run on every advice as well.

    .venv/bin/python benchmarks/bench_budget.py [--customers 20000] [--seeds 101 102 103] [--judge PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

SCENARIOS = ("default", "volume_vs_value", "saturated", "carryover", "unprofitable")
OBJECTIVES = ("value", "profit:0.3", "profit:1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), help="value, or profit:MARGIN")
    ap.add_argument("--max-shift", type=float, default=0.2)
    ap.add_argument("--need", type=float, default=0.9, help="share of the optimum's gain a run must capture")
    ap.add_argument("--judge", type=Path, default=None, help="an external judge script run on every advice too")
    ap.add_argument("--keep", type=Path, default=None, help="keep simulations and advice under this directory")
    ap.add_argument("--verbose", action="store_true", help="print every advice table")
    return ap.parse_args(argv)


# ------------------------------------------------------------------------------------------ the true curves


class TrueCurves:
    """The simulator's true steady-state response per paid channel: value per period of a spend level."""

    def __init__(self, truth: dict, names: list[str]):
        channels = truth.get("channels", truth)
        self.names = names
        self.params = [channels[n]["leads_per_period"] for n in names]
        self.value_per_lead = np.array([channels[n]["value_per_lead"] for n in names], dtype=float)

    def value(self, spend: np.ndarray) -> float:
        """True expected value per period of an allocation."""
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        total = 0.0
        for i, p in enumerate(self.params):
            ratio = (s[i] / p["half_saturation"]) ** p["shape"]
            total += self.value_per_lead[i] * (p["base"] + p["max"] * ratio / (1.0 + ratio))
        return total

    def objective(self, spend: np.ndarray, margin: float | None) -> float:
        """Value (margin None) or profit, margin x value - spend."""
        return self.value(spend) if margin is None else margin * self.value(spend) - float(np.sum(spend))

    def optimum(self, current: np.ndarray, max_shift: float, margin: float | None) -> np.ndarray:
        """The true best allocation within +-max_shift of today (same total under value, free under profit)."""
        lo, hi = current * (1 - max_shift), current * (1 + max_shift)
        scale = max(self.objective(current, margin), 1.0)
        same_total = [] if margin is not None else [{"type": "eq", "fun": lambda s: s.sum() - current.sum()}]
        best, best_value = current, self.objective(current, margin)
        rng = np.random.default_rng(0)
        for start in [current, *(rng.uniform(lo, hi) for _ in range(6))]:
            if margin is None:
                start = np.clip(start * current.sum() / start.sum(), lo, hi)
            fit = minimize(
                lambda s: -self.objective(s, margin) / scale,
                start,
                bounds=list(zip(lo, hi, strict=True)),
                constraints=same_total,
                method="SLSQP",
                options={"maxiter": 300, "ftol": 1e-12},
            )
            value = self.objective(fit.x, margin)
            total_ok = margin is not None or abs(fit.x.sum() - current.sum()) <= 1e-6 * current.sum()
            if fit.success and total_ok and value > best_value:
                best, best_value = fit.x, value
        return best


def captured(truth: TrueCurves, advice: dict, max_shift: float, margin: float | None) -> dict:
    """The advice's true gain against the true optimum's: share captured, and whether it loses anything."""
    rows = {r["channel"]: r for r in advice["channels"]}
    current = np.array([rows[n]["current_spend"] for n in truth.names], dtype=float)
    advised = np.array([rows[n]["recommended_spend"] for n in truth.names], dtype=float)
    best = truth.optimum(current, max_shift, margin)
    now, new, top = (truth.objective(s, margin) for s in (current, advised, best))
    share = (new - now) / (top - now) if top - now > 1e-9 * max(abs(now), 1.0) else float("nan")
    return {"share": share, "loses": new < now - 1e-9 * max(abs(now), 1.0), "gain": new - now, "best_gain": top - now}


# ------------------------------------------------------------------------------------------------- running


def simulate_to(directory: Path, scenario: str, seed: int, customers: int) -> str:
    """Simulate one scenario into `directory`; returns its as_of. BLAS runs on one thread (the oracle's expm)."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS so that the limit covers it)
    from threadpoolctl import threadpool_limits

    from simulator.simulate import SimConfig, simulate, write_simulation

    with threadpool_limits(1):
        sim = simulate(SimConfig(customers=customers, seed=seed, scenario=scenario))
    write_simulation(sim, directory)
    return sim.meta["as_of"]


def objective_options(name: str) -> tuple[dict, float | None]:
    """`value` or `profit:MARGIN` as recommend_budget options, and the margin (None under value)."""
    if name == "value":
        return {"objective": "value"}, None
    margin = float(name.split(":", 1)[1])
    return {"objective": "profit", "margin": margin}, margin


def run_external_judge(judge: Path, sim_dir: Path, advice_path: Path, args, margin: float | None) -> bool:
    """The external judge's verdict on one advice file."""
    cmd = [sys.executable, str(judge), str(sim_dir), str(advice_path), "--max-shift", str(args.max_shift)]
    cmd += ["--need", str(args.need)]
    if margin is not None:
        cmd += ["--objective", "profit", "--margin", str(margin)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).returncode == 0


def run_scenario(args: argparse.Namespace, root: Path, scenario: str, seed: int) -> list[dict]:
    """Simulate one scenario and seed, fit once per response model, advise under every objective and value it."""
    from crmdata.contract import load_tables
    from marketing.advice import format_advice, recommend_budget
    from marketing.response_curves import fit_response_curves

    sim_dir = root / f"{scenario}_seed{seed}"
    as_of = pd.Timestamp(simulate_to(sim_dir, scenario, seed, args.customers))
    truth_json = json.loads((sim_dir / "truth" / "channels.json").read_text())
    tables = load_tables(sim_dir, as_of=as_of)
    carryover = any(c.get("carryover", 0) > 0 for c in truth_json.get("channels", {}).values())
    rows = []
    for model in ("carryover", "same-week") if carryover else ("carryover",):
        started = time.perf_counter()
        curves = fit_response_curves(tables, as_of, carryover=model == "carryover")
        fitted = time.perf_counter() - started
        truth = TrueCurves(truth_json, sorted(curves.curves))
        for name in args.objectives:
            options, margin = objective_options(name)
            started = time.perf_counter()
            advice = recommend_budget(curves, max_shift=args.max_shift, **options)
            seconds = fitted + time.perf_counter() - started
            path = sim_dir / f"advice_{model}_{name.replace(':', '_')}.json"
            path.write_text(json.dumps(advice, indent=2, allow_nan=False) + "\n")
            row = {"scenario": scenario, "seed": seed, "model": model, "objective": name, "seconds": seconds}
            row |= captured(truth, advice, args.max_shift, margin)
            row["spend_change"] = advice["total"]["recommended_spend"] / advice["total"]["current_spend"] - 1
            row["judge"] = run_external_judge(args.judge, sim_dir, path, args, margin) if args.judge else None
            rows.append(row)
            print_row(row)
            if args.verbose:
                print(format_advice(advice))
    return rows


def print_row(row: dict) -> None:
    """One line per advice."""
    judge = "" if row["judge"] is None else ("judge holds" if row["judge"] else "judge FAILS")
    print(
        f"{row['scenario']:<16}{row['seed']:>5}  {row['model']:<10}{row['objective']:<12}{row['share']:>9.1%}"
        f"{'  LOSES' if row['loses'] else '':<7}{row['spend_change']:>+8.1%}{row['seconds']:>8.2f}s  {judge}",
        flush=True,
    )


def summarise(rows: list[dict], need: float) -> int:
    """Per scenario, model and objective: runs, minimum and mean captured share, losses; 0 when all pass."""
    frame = pd.DataFrame(rows)
    frame["passes"] = (frame["share"].fillna(1.0) >= need) & ~frame["loses"]
    summary = frame.groupby(["scenario", "model", "objective"], sort=False).agg(
        runs=("passes", "size"),
        passed=("passes", "sum"),
        min_share=("share", "min"),
        mean_share=("share", "mean"),
        losses=("loses", "sum"),
    )
    print("\nsummary\n" + summary.to_string(float_format=lambda x: f"{x:.1%}"))
    ours = frame[frame["model"] == "carryover"]
    seconds = ours.groupby(["scenario", "seed"])["seconds"].max()
    print(f"\nadvice time (fit + optimise) median {statistics.median(seconds):.2f}s, worst {seconds.max():.2f}s")
    same_week = frame[frame["model"] == "same-week"]
    if len(same_week):
        keys = ["scenario", "seed", "objective"]
        paired = same_week.merge(ours, on=keys, suffixes=("_naive", "_carryover"))
        print(
            f"carryover scenarios: captured share, same-week fit mean {paired['share_naive'].mean():.1%} "
            f"(worst {paired['share_naive'].min():.1%}, {int(paired['loses_naive'].sum())} losing) against the "
            f"carryover fit's {paired['share_carryover'].mean():.1%} (worst {paired['share_carryover'].min():.1%})"
        )
    failed = int((~ours["passes"]).sum())
    print(f"\n{len(ours) - failed}/{len(ours)} advices capture {need:.0%} of the gain, never losing")
    return 0 if failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Run every seed x scenario x objective, print the table and the summary; 0 when every advice passes."""
    args = parse_args(argv)
    if args.judge is not None and not args.judge.exists():
        print(f"judge not found: {args.judge}", file=sys.stderr)
        return 2
    print(f"{args.customers:,} customers; need {args.need:.0%} of the true optimum's gain; max shift {args.max_shift}")
    print(f"{'scenario':<16}{'seed':>5}  {'model':<10}{'objective':<12}{'captured':>9}{'':<7}{'spend':>8}{'time':>9}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_budget_") as tmp:
        root = args.keep or Path(tmp)
        for seed in args.seeds:
            for scenario in args.scenarios:
                rows += run_scenario(args, root, scenario, seed)
    return summarise(rows, args.need)


if __name__ == "__main__":
    sys.exit(main())
