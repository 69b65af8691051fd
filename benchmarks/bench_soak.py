"""Soak the API: mixed requests for minutes, model reloads, the server's memory and open files sampled.

One API process (uvicorn, one worker) on the registry of MLFLOW_TRACKING_URI (or the embedded store). Clients
on keep-alive connections send, in turn: single leads, 20-lead batches, single customers, prospect pages (when a
prospect store exists), `/ready` and `/metrics`; an admin client reloads the models every `--reload-every`
seconds. Every `--sample-every` seconds the server's resident memory (VmRSS) and open file descriptors are read
from /proc. Prints a line a minute and a summary: requests, errors by status, memory growth after the first
minute (the warm-up: caches, first reloads) and the range of open files.

    .venv/bin/python benchmarks/bench_soak.py --minutes 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from bench_serving import ROOT, free_port, make_leads, read_response, request_bytes, start, stop

READ_KEY, ADMIN_KEY = "soak-read", "soak-admin"


def customers_from(leads: list[dict]) -> list[dict]:
    """Customers with orders: the leads' histories plus two orders each, before their cutoff."""
    out = []
    for i, lead in enumerate(leads):
        created = lead["created_at"]
        orders = [
            {"timestamp": created, "amount": 50.0 + i % 7 * 10, "channel": "online", "product_category": "software"},
            {"timestamp": lead["touchpoints"][-1]["timestamp"], "amount": 80.0, "channel": "phone"},
        ]
        out.append({**lead, "customer_id": f"S{i:05d}", "orders": orders, "funnel_events": []})
    return out


def payloads(port: int, leads: list[dict], prospects: bool) -> list[bytes]:
    """The mixed request cycle every client walks through (each client from its own offset)."""
    auth = {"X-API-Key": READ_KEY}
    customers = customers_from(leads[:50])
    mix = []
    for i in range(50):
        mix.append(request_bytes(port, "/v1/leads/score", json.dumps(leads[i]).encode(), auth))
        mix.append(request_bytes(port, "/v1/customers/score", json.dumps(customers[i]).encode(), auth))
        if i % 5 == 0:
            batch = {"leads": leads[i : i + 20]}
            mix.append(request_bytes(port, "/v1/leads/score", json.dumps(batch).encode(), auth))
        if i % 10 == 0:
            mix.append(request_bytes(port, "/ready", None, {}))
            mix.append(request_bytes(port, "/metrics", None, auth))
            if prospects:
                mix.append(request_bytes(port, f"/v1/prospects?limit=50&offset={i}", None, auth))
    return mix


async def client(port: int, mix: list[bytes], offset: int, until: float, statuses: Counter) -> None:
    """Send the mix in turn on one keep-alive connection until `until`, counting statuses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.monotonic() < until:
            writer.write(mix[i % len(mix)])
            i += 1
            statuses[await read_response(reader)] += 1
    finally:
        writer.close()


async def reloader(port: int, every: float, until: float, statuses: Counter) -> None:
    """Reload the models every `every` seconds (admin key), counting the answers apart."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        while time.monotonic() + every < until:
            await asyncio.sleep(every)
            answer = await http.post("/v1/models/reload", headers={"X-API-Key": ADMIN_KEY})
            statuses[answer.status_code] += 1


def sample(pid: int) -> tuple[float, int]:
    """The process's resident memory in MB and its open file descriptors."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def sampler(pid: int, every: float, until: float, statuses: Counter, rows: list[dict], t0: float) -> None:
    """Sample memory and files every `every` seconds; print a line a minute."""
    last_print, last_total = t0, 0
    while time.monotonic() < until:
        await asyncio.sleep(every)
        rss, fds = sample(pid)
        now = time.monotonic()
        rows.append({"t": now - t0, "rss_mb": rss, "fds": fds})
        if now - last_print >= 60:
            total = sum(statuses.values())
            rate = (total - last_total) / (now - last_print)
            errors = sum(n for s, n in statuses.items() if s >= 400)
            print(f"{(now - t0) / 60:5.1f} min  {rate:7.1f} rps  rss {rss:7.1f} MB  fds {fds:4d}  errors {errors}")
            last_print, last_total = now, total


async def soak(port: int, pid: int, mix: list[bytes], args: argparse.Namespace) -> tuple[Counter, Counter, list]:
    statuses, reloads, rows = Counter(), Counter(), []
    t0 = time.monotonic()
    until = t0 + args.minutes * 60
    step = max(1, len(mix) // args.concurrency)
    await asyncio.gather(
        *(client(port, mix, k * step, until, statuses) for k in range(args.concurrency)),
        reloader(port, args.reload_every, until, reloads),
        sampler(pid, args.sample_every, until, statuses, rows, t0),
    )
    return statuses, reloads, rows


def summary(statuses: Counter, reloads: Counter, rows: list[dict], minutes: float) -> None:
    total = sum(statuses.values())
    errors = {s: n for s, n in statuses.items() if s >= 400}
    after = [r for r in rows if r["t"] >= 60] or rows
    base, last = after[0]["rss_mb"], after[-1]["rss_mb"]
    peak = max(r["rss_mb"] for r in after)
    fds = [r["fds"] for r in after]
    print(f"\n{total:,} requests in {minutes:g} min ({total / (minutes * 60):.1f} rps); errors {errors or 0}")
    print(f"reloads: {dict(reloads)}")
    print(f"memory after the first minute: {base:.1f} -> {last:.1f} MB ({(last - base) / base:+.1%}), peak {peak:.1f}")
    print(f"open files after the first minute: min {min(fds)}, max {max(fds)}, last {fds[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--reload-every", type=float, default=60.0, help="seconds between model reloads")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()), help="where the server logs")
    args = parser.parse_args()

    from training.registry import tracking_uri

    env = {**os.environ, "CRM_SCORING_API_KEYS": f"{READ_KEY}:read,{ADMIN_KEY}:admin", "OMP_NUM_THREADS": "1"}
    env.update({"PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": tracking_uri()})
    env["CRM_SCORING_RATE_LIMIT_PER_SECOND"] = "0"  # one key sends everything, as fast as the server answers
    port = free_port()
    code = f"from serving.api import serve; serve('127.0.0.1', {port}, log_level='warning')"
    proc = start([sys.executable, "-c", code], f"http://127.0.0.1:{port}/ready", env, args.logs / "bench_soak.log")
    try:
        probe = httpx.get(f"http://127.0.0.1:{port}/v1/prospects?limit=1", headers={"X-API-Key": READ_KEY})
        prospects = probe.status_code == 200
        if not prospects:
            print(f"no prospect store ({probe.status_code}): prospect pages left out of the mix")
        mix = payloads(port, make_leads(70, seed=3), prospects)
        print(f"soaking for {args.minutes:g} min, {args.concurrency} clients, a reload every {args.reload_every:g} s")
        statuses, reloads, rows = asyncio.run(soak(port, proc.pid, mix, args))
        summary(statuses, reloads, rows, args.minutes)
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
