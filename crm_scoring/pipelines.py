"""The jobs, wired once: load an export, train, score, evaluate and advise on budget.

The CLI, the MLproject entry points (through the CLI) and the notebook all call these, so the wiring between the
data contract, the models and the marketing layer lives in one place. The funnel vocabulary a job uses comes from
the training config (train) or from the registered champions (everything after): one export, one vocabulary.
Each job tells `crm_scoring.progress.report` its steps (shown only when a command opened a display).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crm_scoring.progress import report
from crmdata.contract import load_tables
from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.timeutil import data_end

TRAINED_FUNNEL_MISMATCH = "the champions were trained on different funnels ({found}); retrain them on one config"


@dataclass(frozen=True)
class Export:
    """A CRM export loaded and validated before its cutoff."""

    tables: dict[str, pd.DataFrame | None]
    cutoff: pd.Timestamp
    funnel: Funnel


def load_export(data: Path, as_of: pd.Timestamp | None, funnel: Funnel = DEFAULT_FUNNEL) -> Export:
    """Load the tables before `as_of` (default: after the last row); raises `ContractError` on bad data."""
    report(f"loading and validating {data}")
    tables = load_tables(data, as_of=as_of, funnel=funnel)
    return Export(tables, as_of if as_of is not None else data_end(tables), funnel)


def champions(kinds=None) -> tuple[dict, dict[str, str]]:
    """The registered @champion models (configuring the tracking store first), and why any is missing."""
    from training.registry import configure, load_champions

    report("loading the champion models")
    configure()
    return load_champions(kinds)


def funnel_of(bundles: dict) -> Funnel:
    """The funnel the champions were trained on (the default when none is registered); refuse a mix."""
    funnels = {b.spec.funnel for b in bundles.values()}
    if len(funnels) > 1:
        raise ValueError(TRAINED_FUNNEL_MISMATCH.format(found="; ".join(f.describe() for f in funnels)))
    return funnels.pop() if funnels else DEFAULT_FUNNEL


def train(export: Export, config, promote: str = "auto", data_dir: str = "", kinds=None):
    """Train, log, register and maybe promote the models; the channel report goes on the same parent run.

    Before fitting anything, the tracking store must answer and every champion is loaded once
    (`training.preflight`): an unreachable store fails in seconds; a champion that cannot be loaded is named in a
    warning, and under `auto` the new model replaces it. Under `mlflow run`, the run it opened (`MLFLOW_RUN_ID`)
    becomes the parent. The variable is taken out of the environment as it is read: MLflow would otherwise
    resume that run at every nested `start_run`, not open a child.
    """
    from training.config import MODEL_KINDS
    from training.preflight import check_before_training
    from training.train import run_training

    report("checking the tracking store and the champions")
    check_before_training(kinds or MODEL_KINDS)
    launched = os.environ.pop("MLFLOW_RUN_ID", None)
    return run_training(
        export.tables,
        export.cutoff,
        config,
        promote,
        data_dir,
        kinds=kinds or MODEL_KINDS,
        extra_logging=log_channels,
        parent_run_id=launched,
        progress=report,
    )


def cleanup_runs(older_than_hours: float) -> list[str]:
    """Mark FAILED the runs a killed training left RUNNING for over `older_than_hours`; returns their ids."""
    from training.maintenance import fail_stale_runs
    from training.registry import configure

    configure()
    return fail_stale_runs(older_than_hours)


def champion_marks():
    """The registry's champions: name -> the training that put each in place, and name -> version."""
    from training.champion_set import champion_marks as marks
    from training.preflight import check_tracking
    from training.registry import configure

    check_tracking(configure())
    return marks()


def repair_champions(as_is: bool = False):
    """Finish the champion move a killed training left half done (`training.champion_set.repair`)."""
    from training.champion_set import repair
    from training.preflight import check_tracking
    from training.registry import configure

    check_tracking(configure())
    return repair(as_is)


def relocate_store(models: Path | None = None):
    """Point the embedded store (default: the `models/` folder in use) at the folder it now lives in."""
    from training.maintenance import relocate_store as relocate
    from training.registry import models_dir

    return relocate(models or models_dir())


def log_channels(outcome, tables: dict) -> None:
    """Log channel performance and budget advice (with a spend chart) to the active run, when spend exists."""
    import mlflow

    from marketing.advice import log_channel_report
    from training.scoring import model_lead_values

    if tables.get("channel_spend") is None or tables["channel_spend"].empty:
        mlflow.set_tag("channels", "skipped: no channel_spend table")
        return
    clv = outcome.results.get("clv")
    values = model_lead_values(tables, outcome.as_of, clv.bundle if clv else None)
    try:
        log_channel_report(tables, outcome.as_of, values, funnel=outcome.spec.funnel)
    except ValueError as exc:  # too little spend history to fit curves: say so, keep the models
        mlflow.set_tag("channels", f"skipped: {exc}")


def score(export: Export, bundles: dict, out: Path, reasons: bool = True, prospects_db: Path | None = None):
    """Score every lead and customer, write the score file and the API's prospect store; returns (scores, store)."""
    from serving.store import write_prospects
    from training.scoring import score_customers, write_scores

    scores = score_customers(export.tables, export.cutoff, bundles, reasons=reasons, progress=report)
    report(f"writing {out}")
    write_scores(scores, out)
    report("writing the prospect store")
    return scores, write_prospects(scores, prospects_db)


def evaluate(export: Export, cutoff: pd.Timestamp, bundles: dict, data: Path) -> dict:
    """Score the champions at a past cutoff and measure them on what happened after it (and on the oracle)."""
    from training.backtest import backtest, read_truth

    return backtest(export.tables, cutoff, bundles, read_truth(data, cutoff), progress=report)


def budget(export: Export, clv_bundle, realised: bool = False, plan: dict | None = None, **constraints) -> dict:
    """Channel budget advice, or with `plan` ({channel: spend per period}) the plan's what-if (options
    `current_spend` and `margin` only); leads valued by the CLV model unless `realised` (or there is none)."""
    from marketing.advice import budget_advice
    from marketing.optimiser import with_current_spend
    from marketing.response_curves import fit_response_curves
    from marketing.what_if import what_if
    from training.scoring import model_lead_values

    report("valuing the leads")
    values = None if realised else model_lead_values(export.tables, export.cutoff, clv_bundle, progress=report)
    if plan is None:
        return budget_advice(export.tables, export.cutoff, values, progress=report, **constraints)
    report("fitting the channel response curves")
    curves = fit_response_curves(export.tables, export.cutoff, values)
    curves = with_current_spend(curves, constraints.get("current_spend"))
    return what_if(curves, plan, constraints.get("margin"))
