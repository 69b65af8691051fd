"""The `crm-score` command line: thin Typer commands over the training and serving modules."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crm_scoring.channels_cmd import budget
from crm_scoring.console import fail as _fail
from crm_scoring.console import guarded as _guarded
from crm_scoring.importer import import_export
from crm_scoring.options import AsOf, ConfigFile, DataDir
from crm_scoring.progress import shown
from crm_scoring.upkeep import champions_app, runs_app, store_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Score CRM leads and customers: simulate, import, validate, train, score, evaluate, budget, serve, demo.",
)

app.add_typer(runs_app, name="runs")
app.add_typer(store_app, name="store")
app.add_typer(champions_app, name="champions")
app.command("import")(import_export)
app.command("budget")(budget)


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False) -> None:
    """Warnings only, unless `--verbose`; MLflow's own INFO lines too (its `MLFLOW_LOGGING_LEVEL` wins if set)."""
    import os

    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", logging.getLevelName(level))


def _iso(param: typer.CallbackParam, value: str | None) -> str | None:
    """A date option as naive UTC ISO 8601 text; anything else is refused naming the option and an accepted form."""
    from crmdata.timeutil import ISO_EXAMPLE, parse_iso

    if value is None:
        return None
    try:
        return parse_iso(value, param.opts[0]).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date; use e.g. {ISO_EXAMPLE}") from None


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tables and truth/ into.")],
    customers: Annotated[int, typer.Option(help="Number of leads/customers to simulate.", min=1)] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed always gives the same data.")] = 0,
    start: Annotated[str, typer.Option(help="First day of the history (ISO date).", callback=_iso)] = "2023-01-01",
    end: Annotated[str, typer.Option(help="End of the history, exclusive (ISO date).", callback=_iso)] = "2025-12-31",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Cutoff of the truth; default end - 365 days.", callback=_iso)
    ] = None,
    scenario: Annotated[
        str, typer.Option(help="Scenario: default, volume_vs_value, saturated, carryover, unprofitable or seasonal.")
    ] = "default",
    fmt: Annotated[Format, typer.Option("--format", help="File format of the tables.")] = Format.parquet,
) -> None:
    """Simulate a CRM export with ground truth (truth/customers, truth/channels.json, truth/meta.json)."""
    import time

    from simulator.simulate import SimConfig, simulate, write_simulation

    began = time.perf_counter()
    with shown("simulate") as report:
        try:
            cfg = SimConfig(customers=customers, seed=seed, start=start, end=end, as_of=as_of, scenario=scenario)
            sim = simulate(cfg, progress=report)
        except ValueError as exc:
            _fail(str(exc), 2)
        report(f"writing the tables into {out}")
        write_simulation(sim, out, fmt.value)
    rows = ", ".join(f"{k} {v:,}" for k, v in sim.meta["rows"].items())
    typer.echo(
        f"simulated {sim.meta['customers']:,} customers into {out} in {time.perf_counter() - began:.1f}s: {rows}"
    )
    typer.echo(f"truth as of {sim.meta['as_of'][:10]}: {out / 'truth'}")


@app.command()
def validate(data: DataDir, config: ConfigFile = None) -> None:
    """Check a data directory against the data contract; list every problem, exit 1 if any.

    The funnel stages come from `--config` when given, else from the registered champions, else the defaults.
    """
    from crmdata.contract import format_summary, validate_dir

    if not data.is_dir():
        _fail(f"{data}: not a directory", 2)
    funnel = _config(config, None, None, None).funnel if config else _champions(required=False, quiet=True)[2]
    report = validate_dir(data, funnel=funnel)
    if not report.ok:
        for problem in report.problems:
            typer.secho(str(problem), fg=typer.colors.RED, err=True)
        _fail(f"{len(report.problems)} problem(s) in {data}")
    typer.echo(format_summary(report))


ConvH = Annotated[
    int | None, typer.Option("--conversion-horizon-days", min=1, help="Conversion label window (default 90).")
]
ChurnH = Annotated[int | None, typer.Option("--churn-horizon-days", min=1, help="Churn label window (default 90).")]
ClvH = Annotated[int | None, typer.Option("--clv-horizon-days", min=1, help="CLV label window (default 365).")]


class Promote(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


def _inputs(data: Path, as_of: str | None):
    """Check the arguments before any slow work (loading models or data): exit 2 on a missing directory or a
    cutoff that is not a date; returns the cutoff (None: after the last row)."""
    if not data.is_dir():
        _fail(f"{data}: not a directory", 2)
    return _cutoff(as_of) if as_of else None


def _load(data: Path, cutoff, funnel=None):
    """Load and validate the tables before `cutoff` (None: after the last row); exit 2 on contract errors."""
    from crm_scoring.pipelines import load_export
    from crmdata.contract import ContractError
    from crmdata.funnel import DEFAULT_FUNNEL

    try:
        return load_export(data, cutoff, funnel or DEFAULT_FUNNEL)
    except ContractError as exc:
        _fail(f"the data in {data} breaks the contract:\n{exc}", 2)


def _champions(kinds=None, required: bool = True, quiet: bool = False):
    """The @champion models and the funnel they were trained on; exit 1 when none is registered and one must be."""
    from crm_scoring.pipelines import champions, funnel_of

    bundles, missing = champions(kinds)
    if not quiet and missing:
        _say_missing(missing)
    if required and not bundles:
        _fail("no champion model is registered: run `crm-score train` first")
    try:
        return bundles, missing, funnel_of(bundles)
    except ValueError as exc:
        _fail(str(exc), 2)


def _say_missing(missing: dict[str, str]) -> None:
    """One line: which champions are missing and why (whatever is loaded still scores)."""
    said = "; ".join(why if why.startswith(name) else f"{name}: {why}" for name, why in missing.items())
    typer.secho(f"champions missing ({len(missing)}): {said}", fg=typer.colors.YELLOW, err=True)


def _cutoff(as_of: str):
    """The `--as-of` value as a naive UTC timestamp; exit 2 naming the option and an accepted form unless ISO 8601
    (`31/12/2024` is refused, and `01/02/2024` is not guessed month-first)."""
    from crmdata.timeutil import parse_iso

    try:
        return parse_iso(as_of, "--as-of")
    except ValueError as exc:
        _fail(str(exc), 2)


def _config(config: Path | None, conv: int | None, churn: int | None, clv: int | None):
    from training.config import load_config

    try:
        return load_config(config, conversion_horizon_days=conv, churn_horizon_days=churn, clv_horizon_days=clv)
    except (ValueError, OSError) as exc:
        _fail(str(exc), 2)


@app.command()
def train(
    data: DataDir,
    as_of: AsOf = None,
    config: ConfigFile = None,
    promote: Annotated[
        Promote, typer.Option(help="Move @champion: auto (if not worse), always, never.")
    ] = Promote.auto,
    conversion_horizon_days: ConvH = None,
    churn_horizon_days: ChurnH = None,
    clv_horizon_days: ClvH = None,
) -> None:
    """Train, evaluate, log and register the conversion, churn and CLV models as of a cutoff.

    Before fitting, the tracking store must answer (else it fails in seconds) and each champion is loaded: one
    that cannot be (a file cut short or missing) is named with its version and file, and under `--promote auto`
    the new model replaces it. All @champion aliases of a training move together at its end.
    """
    from rich.console import Console

    from crm_scoring import pipelines

    cfg = _config(config, conversion_horizon_days, churn_horizon_days, clv_horizon_days)
    cutoff = _inputs(data, as_of)
    with shown("train"):
        export = _load(data, cutoff, cfg.funnel)
        _end_runs_on_sigterm()
        summary = _guarded(lambda: pipelines.train(export, cfg, promote.value, str(data)))
    console = Console(stderr=False, width=140)
    console.print(summary.table())
    for note in summary.notes():  # why a model is a fallback or was skipped, each once and in full
        typer.secho(note, fg=typer.colors.YELLOW)
    if not summary.outcome.results:
        _fail("no model could be trained on this data (see the reasons above)")


def _end_runs_on_sigterm() -> None:
    """Turn SIGTERM into `SystemExit`, so the open MLflow runs end FAILED instead of staying RUNNING."""
    import signal
    import sys
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@app.command()
def score(
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", help="Score file, .csv or .parquet.")],
    as_of: AsOf = None,
    conversion_horizon_days: ConvH = None,
    churn_horizon_days: ChurnH = None,
    clv_horizon_days: ClvH = None,
    reasons: Annotated[bool, typer.Option(help="Add the top reasons (slower on millions of rows).")] = True,
    prospects_db: Annotated[
        Path | None, typer.Option("--prospects-db", help="Prospect store for the API (default models/prospects.db).")
    ] = None,
) -> None:
    """Score every lead and customer as of a cutoff with the @champion models; write CSV or Parquet.

    The open leads also go to the API's prospect store, ranked by expected value.
    """
    from crm_scoring import pipelines

    if out.suffix not in (".csv", ".parquet"):
        _fail(f"--out {out}: the score file must end in .csv or .parquet", 2)
    cutoff = _inputs(data, as_of)
    with shown("score"):
        bundles, _, funnel = _champions()
        _check_horizons(bundles, conversion=conversion_horizon_days, churn=churn_horizon_days, clv=clv_horizon_days)
        export = _load(data, cutoff, funnel)
        scores, store = pipelines.score(export, bundles, out, reasons=reasons, prospects_db=prospects_db)
    typer.echo(
        f"scored {len(scores):,} leads and customers as of {export.cutoff.date()} into {out} (prospects: {store})"
    )
    if scores["conversion_probability"].isna().all():
        from serving.store import empty_reason

        typer.secho(f"the prospect list is empty: {empty_reason(scores)}", fg=typer.colors.YELLOW, err=True)


def _check_horizons(bundles: dict, **asked: int | None) -> None:
    """Refuse to score with a champion trained for another horizon than the one asked for."""
    for kind, days in asked.items():
        if days is not None and kind in bundles and bundles[kind].metadata.horizon_days != days:
            trained = bundles[kind].metadata.horizon_days
            _fail(
                f"the {kind} champion predicts a {trained}-day horizon, not {days} days: "
                f"train with --{kind}-horizon-days {days} first",
                2,
            )


@app.command()
def evaluate(
    data: DataDir,
    as_of: Annotated[str, typer.Option("--as-of", help="The past cutoff to score at (exclusive), ISO date.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON only.")] = False,
    conversion_horizon_days: ConvH = None,
    churn_horizon_days: ChurnH = None,
    clv_horizon_days: ClvH = None,
) -> None:
    """Score with the champions as of a past cutoff and measure against what happened after it."""
    import json

    from crm_scoring import pipelines

    _inputs(data, None)
    cutoff = _cutoff(as_of)  # before loading anything: a typo fails fast
    with shown("evaluate"):
        bundles, missing, funnel = _champions(quiet=as_json)
        _check_horizons(bundles, conversion=conversion_horizon_days, churn=churn_horizon_days, clv=clv_horizon_days)
        figures = pipelines.evaluate(_load(data, None, funnel), cutoff, bundles, data)
    if as_json:
        typer.echo(json.dumps({"as_of": str(cutoff), "models": figures, "missing": missing}, indent=2))
        return
    _print_backtest(cutoff, figures)


def _print_backtest(cutoff, figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"champions scored as of {cutoff.date()} against what happened next")
    for col in ("model", "metric", "model", "oracle (same rows)", "rows"):
        table.add_column(col)
    shown = {
        "conversion": ("roc_auc", "pr_auc", "ece", "brier", "top_decile_lift"),
        "churn": ("roc_auc", "pr_auc", "ece", "brier", "top_decile_lift"),
        "clv": ("normalized_gini", "spearman", "top_decile_capture", "pred_actual_ratio", "mae"),
    }
    for kind, entry in figures.items():
        for metric in shown[kind]:
            oracle = entry.get("oracle", {}).get(metric)
            model = (
                entry.get("model_on_oracle_rows", entry["model"])[metric]
                if oracle is not None
                else entry["model"][metric]
            )
            table.add_row(
                kind,
                metric,
                f"{model:.3f}",
                "-" if oracle is None else f"{oracle:.3f}",
                f"{int(entry['model']['rows']):,}",
            )
    Console(width=120).print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to put the simulated demo data.")] = Path("data/demo"),
    customers: Annotated[int, typer.Option(help="Number of simulated customers.", min=1000)] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 0,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="End by serving the API.")] = True,
    port: Annotated[int, typer.Option(help="Port of the API.", min=1, max=65535)] = 8000,
) -> None:
    """The main job on the embedded defaults: simulate, validate, train, score, summarise, then serve."""
    import pandas as pd

    if serve_api:
        _check_serving_settings()  # before minutes of work, not after
        _check_port_free("127.0.0.1", port)
    as_of = "2024-12-31"
    simulate(
        out=out,
        customers=customers,
        seed=seed,
        start="2023-01-01",
        end="2025-12-31",
        as_of=as_of,
        scenario="default",
        fmt=Format.parquet,
    )
    validate(data=out, config=None)
    train(
        data=out,
        as_of=as_of,
        config=None,
        promote=Promote.auto,
        conversion_horizon_days=None,
        churn_horizon_days=None,
        clv_horizon_days=None,
    )
    scores_file = out / "scores.csv"
    score(
        data=out,
        out=scores_file,
        as_of=as_of,
        conversion_horizon_days=None,
        churn_horizon_days=None,
        clv_horizon_days=None,
        reasons=True,
        prospects_db=None,
    )
    scores = pd.read_csv(scores_file)
    leads = scores[scores.conversion_probability.notna()].sort_values("expected_value", ascending=False)
    typer.echo(f"\ntop prospects as of {as_of} (of {len(leads):,} open leads), by expected value:")
    typer.echo(
        leads.head(10)[
            ["customer_id", "conversion_score", "conversion_tier", "expected_value", "source_channel", "current_stage"]
        ].to_string(index=False)
    )
    typer.echo(f"\nhow the champions did on what happened next: crm-score evaluate --data {out} --as-of {as_of}")
    if serve_api:
        import os

        os.environ.setdefault("CRM_SCORING_DATA_DIR", str(out))  # the channel routes read the demo export
        typer.echo(f"\nserving the API on http://127.0.0.1:{port} (docs at /docs; Ctrl-C stops it)")
        serve(host="127.0.0.1", port=port)


def _check_port_free(host: str, port: int) -> None:
    """Exit 2 in one line when `port` cannot be listened on, before the demo trains for minutes and then fails.

    The probe binds the way uvicorn does (SO_REUSEADDR), so a connection lingering in TIME_WAIT is no false alarm.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            _fail(
                f"port {port} on {host} is taken ({exc.strerror}): stop what uses it, or choose another port "
                f"with --port N (make demo PORT=N)",
                2,
            )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the scoring API (champion models from the registry; keys from CRM_SCORING_API_KEYS)."""
    from serving.api import serve as run_server

    _check_serving_settings()
    run_server(host=host, port=port)


def _check_serving_settings() -> None:
    """Exit 2 with one line naming a bad `CRM_SCORING_*` setting (never its value, which may hold keys)."""
    from serving.settings import InvalidSettings, get_settings

    try:
        get_settings()
    except InvalidSettings as exc:
        _fail(str(exc), 2)
