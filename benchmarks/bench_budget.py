"""Judge the budget advice on simulated scenarios with the independent judge (true response curves).

For every seed x scenario: simulate, write the export and its truth to a temporary directory, load it through
the data contract as of the simulator's `as_of`, advise (realised first-year lead values), write the advice
JSON and run `judge_budget.py SIMDIR ADVICE.json` as a subprocess. Prints per scenario the share of the true
optimum's gain the advice captures and pass/fail, then a summary; exits 1 if any run fails.

    .venv/bin/python benchmarks/bench_budget.py [--customers 50000] [--seeds 1 2 3] [--judge PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("default", "volume_vs_value", "saturated")
VALUES = re.compile(r"true value/period: current ([-\d.]+), advised ([-\d.]+), optimum ([-\d.]+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--judge", type=Path, default=REPO / ".." / "shared" / "tools" / "judge_budget.py")
    ap.add_argument("--max-shift", type=float, default=0.2)
    ap.add_argument("--need", type=float, default=0.8)
    ap.add_argument("--keep", type=Path, default=None, help="keep simulations and advice under this directory")
    ap.add_argument("--verbose", action="store_true", help="print the judge's and the advice's full text")
    return ap.parse_args(argv)


def simulate_to(directory: Path, scenario: str, seed: int, customers: int) -> str:
    """Simulate one scenario into `directory`; returns its as_of. BLAS runs on one thread (the oracle's expm)."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS so that the limit covers it)
    from threadpoolctl import threadpool_limits

    from simulator.simulate import SimConfig, simulate, write_simulation

    with threadpool_limits(1):
        sim = simulate(SimConfig(customers=customers, seed=seed, scenario=scenario))
    write_simulation(sim, directory)
    return sim.meta["as_of"]


def advise(directory: Path, as_of: str, max_shift: float) -> dict:
    """Budget advice from the export as the contract reads it before as_of."""
    from crmdata.contract import load_tables
    from marketing.advice import budget_advice

    tables = load_tables(directory, as_of=as_of)
    return budget_advice(tables, pd.Timestamp(as_of), max_shift=max_shift)


def judge(judge_path: Path, sim_dir: Path, advice_path: Path, max_shift: float, need: float) -> dict:
    """Run the independent judge; returns its verdict, the captured share and its text."""
    cmd = [sys.executable, str(judge_path), str(sim_dir), str(advice_path), "--max-shift", str(max_shift)]
    done = subprocess.run([*cmd, "--need", str(need)], capture_output=True, text=True, check=False)
    match = VALUES.search(done.stdout)
    share = float("nan")
    if match:
        current, advised, optimum = (float(x) for x in match.groups())
        share = (advised - current) / (optimum - current) if optimum - current > 1e-9 else float("nan")
    return {"ok": done.returncode == 0, "share": share, "text": done.stdout + done.stderr}


def run_one(args: argparse.Namespace, root: Path, scenario: str, seed: int) -> dict:
    """Simulate, advise and judge one scenario and seed."""
    sim_dir = root / f"{scenario}_seed{seed}"
    started = time.perf_counter()
    as_of = simulate_to(sim_dir, scenario, seed, args.customers)
    simulated = time.perf_counter()
    advice = advise(sim_dir, as_of, args.max_shift)
    advised = time.perf_counter()
    advice_path = sim_dir / "advice.json"
    advice_path.write_text(json.dumps(advice, indent=2, allow_nan=False) + "\n")
    verdict = judge(args.judge, sim_dir, advice_path, args.max_shift, args.need)
    changes = {r["channel"]: r["change_pct"] for r in advice["channels"]}
    return {
        "scenario": scenario,
        "seed": seed,
        **verdict,
        "uplift": advice["total"]["expected_uplift"],
        "changes": changes,
        "advice": advice,
        "seconds_sim": simulated - started,
        "seconds_advice": advised - simulated,
    }


def print_row(row: dict, verbose: bool) -> None:
    """One line per run (and the full texts when verbose)."""
    moves = " ".join(f"{c} {p:+.0%}" for c, p in row["changes"].items() if p is not None)
    print(
        f"{row['scenario']:<16}{row['seed']:>5}{row['share']:>9.1%}  {'pass' if row['ok'] else 'FAIL':<6}"
        f"{row['uplift']:>12,.0f}  {row['seconds_sim']:>6.1f}s {row['seconds_advice']:>6.1f}s  {moves}",
        flush=True,
    )
    if verbose:
        from marketing.advice import format_advice

        print(format_advice(row["advice"]), row["text"], sep="\n")


def main(argv: list[str] | None = None) -> int:
    """Run every seed x scenario, print the table and the summary; 0 when every run passes."""
    args = parse_args(argv)
    args.judge = args.judge.resolve()
    if not args.judge.exists():
        print(f"judge not found: {args.judge}", file=sys.stderr)
        return 2
    print(f"judge {args.judge}; {args.customers:,} customers; need {args.need:.0%} of the optimum's gain")
    print(
        f"{'scenario':<16}{'seed':>5}{'captured':>9}  {'judge':<6}{'est. uplift':>12}  {'sim':>7} {'advice':>7}  moves"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_budget_") as tmp:
        root = args.keep or Path(tmp)
        for seed in args.seeds:
            for scenario in args.scenarios:
                rows.append(run_one(args, root, scenario, seed))
                print_row(rows[-1], args.verbose)
    summary = (
        pd.DataFrame(rows)
        .groupby("scenario", sort=False)
        .agg(runs=("ok", "size"), passed=("ok", "sum"), min_share=("share", "min"), mean_share=("share", "mean"))
    )
    print("\nsummary\n" + summary.to_string(float_format=lambda x: f"{x:.1%}"))
    passed = sum(r["ok"] for r in rows)
    print(f"\n{passed}/{len(rows)} runs pass; captured share min {min(r['share'] for r in rows):.1%}")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
