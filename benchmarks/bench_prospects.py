"""Page through a prospect store of 1 million open leads: first pages, deep keyset pages, filtered pages.

Writes a synthetic `crm-score score` frame of `--rows` prospects (realistic columns and reasons) with
`serving.store.write_prospects`, then times `serving.store.query_prospects` (connect, query, decode: what
`GET /v1/prospects` does per request) for each query shape `--repeats` times and prints medians and p95,
with the query plan SQLite chose. Deep pages start from the cursor of the row at 90% of the ranking.

    .venv/bin/python benchmarks/bench_prospects.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL
from serving.store import ProspectQuery, encode_cursor, page_sql, query_prospects, write_prospects

CHANNELS = ("search", "social", "email", "event", "referral", "website")
STAGES = DEFAULT_FUNNEL.open_stages
INDUSTRIES = ("software", "retail", "finance", "health", "manufacturing", "education", "media", "logistics")
REGIONS = ("north", "south", "east", "west")


def prospects(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` scored open leads shaped like `training.scoring.score_customers` output."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 6.0, n)
    tiers = np.select([p >= np.quantile(p, 0.9), p >= np.quantile(p, 0.7), p >= np.quantile(p, 0.4)], list("ABC"), "D")
    value = np.round(p * rng.lognormal(6.0, 1.0, n), 6)
    reasons = [
        json.dumps(
            {
                "conversion": [
                    {"feature": "days_in_stage", "value": 12.0, "contribution": 0.41, "text": "12 days in the stage"},
                    {"feature": "touches_30d", "value": 3.0, "contribution": -0.2, "text": "3 touches in 30 days"},
                ]
            }
        )
    ] * n
    return pd.DataFrame(
        {
            "customer_id": [f"P{i:07d}" for i in range(n)],
            "conversion_probability": p,
            "conversion_score": np.round(p * 100).astype(int),
            "conversion_tier": tiers,
            "churn_probability": np.nan,
            "churn_risk": None,
            "expected_clv": value,
            "expected_value": value,
            "top_reasons": reasons,
            "source_channel": rng.choice(CHANNELS, n),
            "current_stage": rng.choice(STAGES, n),
            "industry": rng.choice(INDUSTRIES, n),
            "region": rng.choice(REGIONS, n),
            "stall_ratio": np.round(rng.exponential(1.0, n), 4),
            "value_decile": rng.integers(1, 11, n),
        }
    )


def deep_cursor(db: Path, q: ProspectQuery, share: float = 0.9) -> str:
    """The cursor a client would hold after paging through `share` of the rows matching `q`."""
    con = sqlite3.connect(db)
    try:
        sql, args = page_sql(con, q)
        total = con.execute("SELECT count(*) FROM (" + sql.rsplit(" ORDER BY", 1)[0] + ")", args[:-1]).fetchone()[0]
        cur = con.execute(sql.replace(" LIMIT ?", " LIMIT 1 OFFSET ?"), [*args[:-1], int(total * share)])
        record = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    finally:
        con.close()
    return encode_cursor(q.order, record["rank_key"], record["customer_id"])


def plan(db: Path, q: ProspectQuery) -> str:
    con = sqlite3.connect(db)
    try:
        sql, args = page_sql(con, q)
        return "; ".join(row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args))
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or write and keep) the store here")
    args = parser.parse_args()
    if args.db is not None:
        run(args, args.db)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-prospects-") as tmp:  # about 800 MB at a million rows
            run(args, Path(tmp) / "prospects.db")


def run(args: argparse.Namespace, db: Path) -> None:
    if not db.exists():
        t0 = time.perf_counter()
        frame = prospects(args.rows)
        t1 = time.perf_counter()
        write_prospects(frame, db)
        t2 = time.perf_counter()
        print(f"{args.rows:,} prospects: built in {t1 - t0:.1f} s, written and indexed in {t2 - t1:.1f} s")
    print(f"store {db} ({db.stat().st_size / 1e6:.0f} MB)")

    shapes = [
        ("first page, by value", ProspectQuery(limit=50)),
        ("first page, by probability", ProspectQuery(order="probability", limit=50)),
        ("first page, 1,000 rows", ProspectQuery(limit=1000)),
        ("tier=A", ProspectQuery(tier="A", limit=50)),
        ("channel=event & stalled", ProspectQuery(source_channel="event", stalled=True, limit=50)),
        (
            "region & industry & stage",
            ProspectQuery(region="west", industry="media", current_stage=STAGES[2], limit=50),
        ),
        ("min_score=60 (few rows)", ProspectQuery(min_score=60, limit=50)),
        ("min_score=10 (many rows)", ProspectQuery(min_score=10, limit=50)),
    ]
    deep = [
        ("deep page (90%), by value", ProspectQuery(limit=50)),
        ("deep page (90%), by probability", ProspectQuery(order="probability", limit=50)),
        ("deep page (90%), tier=C", ProspectQuery(tier="C", limit=50)),
        ("deep page (90%), region=north & stalled", ProspectQuery(region="north", stalled=False, limit=50)),
    ]
    for name, q in deep:
        shapes.append((name, ProspectQuery(**{**q.__dict__, "cursor": deep_cursor(db, q)})))

    print(f"\n{'query':42s} {'median ms':>10s} {'p95 ms':>8s} {'rows':>5s}  plan")
    for name, q in shapes:
        times, page = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            page = query_prospects(db, q)
            times.append((time.perf_counter() - t0) * 1000)
        med, p95 = statistics.median(times), float(np.percentile(times, 95))
        print(f"{name:42s} {med:10.2f} {p95:8.2f} {len(page['items']):5d}  {plan(db, q)}")


if __name__ == "__main__":
    main()
