"""Measure this API against `mlflow models serve` on the same registered conversion model, on 127.0.0.1.

Both servers run as one process each (uvicorn, one worker) against the same registry (MLFLOW_TRACKING_URI or
the embedded store under models/). The same leads go to both: each has 50 history events (44 touchpoints,
6 funnel events); this API receives them raw and builds the features itself, while MLflow gets the feature
rows already built (its pyfunc takes features), which only favours MLflow. Cells run alternately (API, MLflow,
API, ...) for `--rounds` rounds; the figures are the medians over rounds. The load generator is a minimal
asyncio HTTP/1.1 keep-alive client, the same for both servers.

Two more variants of this API answer the questions of how to run it: `api-pool` is a second API process with
`CRM_SCORING_INLINE_MAX=0` (every scoring request in the threadpool rather than inline on the event loop), and
`api-0reasons` sends the 100-lead batches with `?top_reasons=0` (scores without reasons, the work MLflow's
server does; the SHAP contributions behind reasons are most of a batch's time).

    .venv/bin/python benchmarks/bench_serving.py --seconds 5 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from crmdata.funnel import DEFAULT_FUNNEL

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
CHANNELS = ("email", "search", "social", "event", "website", "referral", "phone")
INTERACTIONS = ("email_open", "ad_click", "visit", "call", "meeting", "webinar")
STAGES = (*DEFAULT_FUNNEL.open_stages, DEFAULT_FUNNEL.stages[0])  # through the open funnel, then back to its start


def make_leads(n: int, seed: int = 0) -> list[dict]:
    """`n` open leads with 50 history events each, as of 2024-12-31."""
    rng = np.random.default_rng(seed)
    as_of = datetime(2024, 12, 31)
    leads = []
    for i in range(n):
        created = as_of - timedelta(days=float(rng.uniform(30, 400)))
        span = (as_of - created).total_seconds()
        touches = sorted(created + timedelta(seconds=float(s)) for s in rng.uniform(0, span, 44))
        stages = sorted(created + timedelta(seconds=float(s)) for s in rng.uniform(0, span, 6))
        leads.append(
            {
                "customer_id": f"B{i:05d}",
                "created_at": created.isoformat(),
                "source_channel": str(rng.choice(CHANNELS)),
                "industry": str(rng.choice(["software", "retail", "finance", "health"])),
                "region": str(rng.choice(["west", "east", "north", "south"])),
                "employees": float(rng.integers(1, 500)),
                "touchpoints": [
                    {
                        "timestamp": t.isoformat(),
                        "channel": str(rng.choice(CHANNELS)),
                        "interaction": str(rng.choice(INTERACTIONS)),
                        "cost": round(float(rng.uniform(0, 3)), 2),
                    }
                    for t in touches
                ],
                "funnel_events": [
                    {"timestamp": t.isoformat(), "stage": s} for t, s in zip(stages, STAGES, strict=True)
                ],
                "as_of": as_of.isoformat(),
            }
        )
    return leads


def mlflow_rows(leads: list[dict]) -> tuple[list[str], list[list]]:
    """The conversion model's feature rows of `leads` (built as the API builds them) for MLflow's server."""
    import pandas as pd

    from serving import scorer
    from serving.schemas import Lead
    from training.features import build_feature_blocks
    from training.registry import configure, load_bundle

    configure()
    bundle, _ = load_bundle("crm_conversion")
    records = [Lead.model_validate(lead) for lead in leads]
    as_of = datetime(2024, 12, 31)
    frame = build_feature_blocks(scorer.records_to_arrays(records, as_of), pd.Timestamp(as_of), bundle.spec).to_frame()
    cols = list(bundle.spec.columns)
    data = [
        [None if (isinstance(v, float) and np.isnan(v)) else v for v in row] for row in frame[cols].itertuples(False)
    ]
    return cols, data


# ------------------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], ready_url: str, env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"not ready in time: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------ load


def request_bytes(port: int, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 request: a JSON POST, or a GET when `body` is None."""
    method = "GET" if body is None else "POST"
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length or chunked) off a keep-alive connection; returns its status."""
    status_line = await reader.readline()
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value:
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def one_connection(port: int, payloads: list[bytes], until: float, latencies: list[float], errors: list[int]):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(payloads[i % len(payloads)])
            i += 1
            status = await read_response(reader)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(port: int, payloads: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    # warm-up
    await asyncio.gather(
        *(one_connection(port, payloads, time.perf_counter() + 0.5, [], []) for _ in range(concurrency))
    )
    t0 = time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(*(one_connection(port, payloads, until, latencies, errors) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": len(errors),
    }


# ------------------------------------------------------------------------------------------------ main


def api_server(port: int, env: dict, log: Path) -> subprocess.Popen:
    code = f"from serving.api import serve; serve('127.0.0.1', {port}, log_level='warning')"
    return start([sys.executable, "-c", code], f"http://127.0.0.1:{port}/ready", env, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--leads", type=int, default=200, help="distinct leads cycled through")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()), help="where the servers log")
    parser.add_argument("--no-mlflow", action="store_true", help="measure this API only (a quick look)")
    args = parser.parse_args()

    from training.registry import tracking_uri

    env = {**os.environ, "CRM_SCORING_API_KEYS": f"{KEY}:read", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # One key sends every request, faster than the default per-key rate: the benchmark measures throughput.
    env["CRM_SCORING_RATE_LIMIT_PER_SECOND"] = "0"
    env["MLFLOW_TRACKING_URI"] = tracking_uri()  # both servers on the same registry (the embedded one by default)
    # `mlflow models serve` runs `uvicorn` from PATH: the one next to this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    leads = make_leads(max(args.leads, 100))
    cols, rows = mlflow_rows(leads)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    ports = {"api": free_port(), "api-pool": free_port(), "mlflow": free_port()}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["api"] = api_server(ports["api"], env, args.logs / "bench_api.log")
        # The same API with every scoring request sent to the threadpool instead of run on the event loop.
        pool_env = {**env, "CRM_SCORING_INLINE_MAX": "0"}
        procs["api-pool"] = api_server(ports["api-pool"], pool_env, args.logs / "bench_api_pool.log")
        if not args.no_mlflow:
            mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
            ml_cmd = [mlflow_bin, "models", "serve", "-m", "models:/crm_conversion@champion", "--env-manager", "local"]
            procs["mlflow"] = start(
                [*ml_cmd, "-h", "127.0.0.1", "-p", str(ports["mlflow"]), "-w", "1"],
                f"http://127.0.0.1:{ports['mlflow']}/health",
                env,
                args.logs / "bench_mlflow.log",
            )
        auth = {"X-API-Key": KEY}

        def api_payloads(port: int, size: int, query: str = "") -> list[bytes]:
            path = "/v1/leads/score" + query
            if size == 1:
                return [request_bytes(port, path, json.dumps(lead).encode(), auth) for lead in leads]
            chunks = [leads[i : i + size] for i in range(0, len(leads) - size + 1, size)]
            return [request_bytes(port, path, json.dumps({"leads": c}).encode(), auth) for c in chunks]

        def ml_payloads(port: int, size: int) -> list[bytes]:
            chunks = [rows[i : i + size] for i in range(0, len(rows) - size + 1, size)]
            return [
                request_bytes(
                    port, "/invocations", json.dumps({"dataframe_split": {"columns": cols, "data": c}}).encode(), {}
                )
                for c in chunks
            ]

        # (cell, lead per request, concurrency, [(variant, server, payload maker)])
        single = [
            ("api", "api", lambda size: api_payloads(ports["api"], size)),
            ("api-pool", "api-pool", lambda size: api_payloads(ports["api-pool"], size)),
        ]
        batch = [
            ("api", "api", lambda size: api_payloads(ports["api"], size)),
            ("api-0reasons", "api", lambda size: api_payloads(ports["api"], size, "?top_reasons=0")),
        ]
        mlflow = [] if args.no_mlflow else [("mlflow", "mlflow", lambda size: ml_payloads(ports["mlflow"], size))]
        cells = [
            ("single c=1", 1, 1, single + mlflow),
            ("single c=16", 1, 16, single + mlflow),
            ("batch100 c=1", 100, 1, batch + mlflow),
        ]
        results: dict[tuple[str, str], list[dict]] = {}
        for rnd in range(args.rounds):
            for name, size, conc, variants in cells:
                # Alternate the order from round to round, so that no server always goes first.
                for variant, server, payloads in variants if rnd % 2 == 0 else variants[::-1]:
                    r = asyncio.run(load(ports[server], payloads(size), conc, args.seconds))
                    results.setdefault((name, variant), []).append(r)
                    print(
                        f"round {rnd + 1} {name:13s} {variant:12s} rps {r['rps']:8.1f}  p50 {r['p50']:7.2f} ms  "
                        f"p99 {r['p99']:7.2f} ms  errors {r['errors']}",
                        flush=True,
                    )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("\nmedians over rounds (rps = requests/s; a batch request holds 100 leads)")
        print("api: this API (single leads inline on the event loop); api-pool: every request in the threadpool;")
        print("api-0reasons: ?top_reasons=0 (scores without reasons, as MLflow answers); mlflow: mlflow models serve")
        print(f"{'cell':14s} {'variant':13s} {'rps':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
        for name, _, _, variants in cells:
            med = {}
            for variant, _, _ in variants:
                rs = results[(name, variant)]
                med[variant] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "errors")}
                m = med[variant]
                print(f"{name:14s} {variant:13s} {m['rps']:9.1f} {m['p50']:8.2f} {m['p99']:8.2f} {m['errors']:7.0f}")
            for variant, _, _ in variants:
                if variant != "mlflow" and "mlflow" in med:
                    ratio = med[variant]["rps"] / med["mlflow"]["rps"]
                    p99 = med["mlflow"]["p99"] / med[variant]["p99"]
                    print(f"{name:14s} {variant + '/mlflow':26s} throughput {ratio:.1f}x, p99 mlflow/this {p99:.1f}x")
            if "api-pool" in med:
                print(
                    f"{name:14s} inline vs threadpool: rps {med['api']['rps']:.1f} vs {med['api-pool']['rps']:.1f}, "
                    f"p99 {med['api']['p99']:.2f} vs {med['api-pool']['p99']:.2f} ms"
                )
    finally:
        for proc in procs.values():
            stop(proc)


if __name__ == "__main__":
    main()
