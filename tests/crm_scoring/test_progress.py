"""Progress of the long commands: the steps each job reports, in order, and a display that stays off non-terminals."""

from __future__ import annotations

import io
import logging

import pandas as pd
from typer.testing import CliRunner

from crm_scoring import pipelines
from crm_scoring.cli import app
from crm_scoring.progress import listening, shown
from crmdata.funnel import DEFAULT_FUNNEL
from simulator.simulate import SIM_STEPS, SimConfig, simulate
from training import scoring, train
from training.config import TrainConfig

AS_OF = pd.Timestamp("2024-12-31")
BAR_MARKS = ("━", "\x1b[?25l", "eta", "⠋")  # rich's bar, its hidden cursor, the ETA column, the spinner
runner = CliRunner()


class Recorder:
    """A progress callback that keeps every (step, done, total) it hears."""

    def __init__(self):
        self.calls: list[tuple] = []

    def __call__(self, step, done=None, total=None):
        self.calls.append((step, done, total))

    def steps(self) -> list[str]:
        return [step for step, _, _ in self.calls]


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal, so that `shown` draws into it."""

    def isatty(self) -> bool:
        return True


def test_train_names_each_model_before_fitting_it(tables, monkeypatch):
    events: list[str] = []
    real = train.train_one
    monkeypatch.setattr(train, "train_one", lambda plan, *a: events.append(f"fit {plan.kind}") or real(plan, *a))
    config = TrainConfig(snapshots=2, conversion_snapshots=2)
    train.train_models(tables, AS_OF, config, progress=lambda step, done, total: events.append((step, done, total)))
    assert events == [
        ("training conversion (1 of 3)", 0, 3),
        "fit conversion",
        ("training churn (2 of 3)", 1, 3),
        "fit churn",
        ("training clv (3 of 3)", 2, 3),
        "fit clv",
    ]


def test_score_reports_each_model_and_reason_chunk_to_completion(use_store, tables, monkeypatch):
    bundles, _ = pipelines.champions()
    whole = scoring.score_customers(tables, AS_OF, bundles)
    monkeypatch.setattr(scoring, "REASON_CHUNK", 200)
    heard = Recorder()
    chunked = scoring.score_customers(tables, AS_OF, bundles, progress=heard)
    pd.testing.assert_frame_equal(chunked, whole)  # chunking the reasons changes nothing in the scores
    steps = heard.steps()
    assert steps[0] == "building the features" and steps[-1] == "weighing the evidence"
    models = [s for s in steps if s.startswith("scoring ")]
    assert models == ["scoring conversion (1 of 3)", "scoring churn (2 of 3)", "scoring clv (3 of 3)"]
    for kind in ("conversion", "churn", "clv"):
        chunks = [(done, total) for step, done, total in heard.calls if step == f"{kind} reasons"]
        assert len(chunks) >= 3 and chunks[-1][0] == chunks[-1][1]  # several chunks, ending at every row
        assert [done for done, _ in chunks] == sorted(done for done, _ in chunks)
        assert steps.index(f"{kind} reasons") > steps.index(next(s for s in models if kind in s))


def test_simulate_reports_its_steps_in_order():
    heard = Recorder()
    simulate(SimConfig(customers=300, seed=1), progress=heard)
    assert heard.steps() == [f"simulating the {step}" for step in SIM_STEPS]
    assert [done for _, done, _ in heard.calls] == list(range(len(SIM_STEPS)))


def test_evaluate_and_budget_report_their_steps_through_the_open_display(use_store, sim_dir):
    heard = Recorder()
    with listening(heard):
        bundles, _ = pipelines.champions()
        export = pipelines.load_export(sim_dir, None, DEFAULT_FUNNEL)
        pipelines.evaluate(export, AS_OF, bundles, sim_dir)
        evaluated = heard.steps()
        pipelines.budget(pipelines.load_export(sim_dir, AS_OF), bundles["clv"])
    budgeted = heard.steps()[len(evaluated) :]
    assert evaluated[:3] == [
        "loading the champion models",
        f"loading and validating {sim_dir}",
        "building the features",
    ]
    assert [s for s in evaluated if s.startswith("measuring")] == [
        f"measuring {kind} against what happened ({i} of 3)" for i, kind in enumerate(("conversion", "churn", "clv"), 1)
    ]
    assert budgeted[1:3] == ["valuing the leads", "building the features"]
    assert budgeted[-2:] == ["fitting the channel response curves", "optimising the budget"]


def test_a_terminal_shows_the_step_and_prints_warnings_through_the_bar(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    handlers = logging.getLogger().handlers[:]
    with shown("score") as report:
        report("scoring churn (2 of 3)", 1, 3)
        logging.getLogger("crm_scoring.test").warning("a warning during the bar")
    drawn = terminal.getvalue()
    assert "score: scoring churn (2 of 3)" in drawn
    # The warning went through the bar's console (which prints it above the bar), same text as without a bar.
    assert "WARNING crm_scoring.test: a warning during the bar" in drawn
    assert logging.getLogger().handlers == handlers


def test_commands_print_no_progress_when_stderr_is_not_a_terminal(use_store, sim_dir, tmp_path):
    simulated = runner.invoke(app, ["simulate", "--out", str(tmp_path / "sim"), "--customers", "300"])
    scored = runner.invoke(
        app, ["score", "--data", str(sim_dir), "--as-of", "2024-12-31", "--out", str(tmp_path / "s.csv")]
    )
    for result in (simulated, scored):
        assert result.exit_code == 0, result.output
        assert not any(mark in result.output for mark in BAR_MARKS), result.output
    assert scored.output.startswith("scored ") and len(scored.output.strip().splitlines()) == 1
