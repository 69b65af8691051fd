"""The CLI under faults: any load error is one line and a non-zero exit, never click's bare `Aborted.`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crm_scoring import pipelines
from crm_scoring.cli import app
from training.artifact import ModelLoadError

runner = CliRunner()


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (EOFError(), "error: a file ended too soon: EOFError"),
        (
            ModelLoadError("model crm_churn version 3: booster.txt: cut"),
            "error: model crm_churn version 3: booster.txt",
        ),
    ],
    ids=["eof", "unreadable"],
)
def test_a_load_error_during_training_is_one_line_not_aborted(error, line, tmp_path, monkeypatch):
    (tmp_path / "customers.csv").write_text("customer_id,created_at\nc1,2024-01-01\n")

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipelines, "train", fails)
    result = runner.invoke(app, ["train", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "Aborted" not in result.output
    assert result.output.strip().splitlines() == [result.output.strip()] and result.output.startswith(line)
