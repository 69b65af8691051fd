"""Time and peak memory of feature building and training at several data sizes.

Each size runs in its own subprocess so that peak RSS is that size's own. Usage:
    python benchmarks/bench_train.py [--sizes 10000 100000] [--workdir DIR]
Prints one line per size: simulate, one feature cutoff, full training (all three models), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(customers: int, workdir: Path) -> dict:
    """Simulate, load, build one cutoff's features and train every model; return timings and peak RSS."""
    import pandas as pd

    from crmdata.contract import load_tables
    from simulator.simulate import SimConfig, simulate, write_simulation
    from training.config import TrainConfig
    from training.features import build_features, fit_feature_spec
    from training.train import train_models

    data = workdir / f"sim{customers}"
    began = time.perf_counter()
    write_simulation(simulate(SimConfig(customers=customers, seed=1)), data)
    simulated = time.perf_counter() - began
    as_of = pd.Timestamp("2024-12-31")
    began = time.perf_counter()
    tables = load_tables(data, as_of=as_of)
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    spec = fit_feature_spec(tables, as_of)
    features = build_features(tables, as_of, spec)
    featured = time.perf_counter() - began
    began = time.perf_counter()
    outcome = train_models(tables, as_of, TrainConfig())
    trained = time.perf_counter() - began
    return {
        "customers": customers,
        "rows": {k: len(v) for k, v in tables.items()},
        "simulate_s": round(simulated, 1),
        "load_s": round(loaded, 1),
        "features_one_cutoff_s": round(featured, 2),
        "feature_columns": features.shape[1],
        "train_all_models_s": round(trained, 1),
        "train_rows": {k: r.train_rows for k, r in outcome.results.items()},
        "holdout": {
            k: round(r.metrics["roc_auc" if k != "clv" else "normalized_gini"], 3) for k, r in outcome.results.items()
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    if args.one:
        print(json.dumps(run_one(args.one, workdir)))
        return
    for size in args.sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{size:>7,} customers: simulate {result['simulate_s']}s, load {result['load_s']}s, "
            f"features (one cutoff, {result['feature_columns']} columns) {result['features_one_cutoff_s']}s, "
            f"train all models {result['train_all_models_s']}s, peak RSS {result['peak_rss_mb']} MB; "
            f"train rows {result['train_rows']}; holdout {result['holdout']}"
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
