"""The CLI's date options are ISO 8601 or refused (exit 2) naming the option and an accepted form, before any
data or model is loaded; zoned dates become naive UTC."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_scoring.cli import _cutoff, app
from crmdata.timeutil import ISO_EXAMPLE

runner = CliRunner()


@pytest.mark.parametrize("command", ["train", "score", "evaluate", "budget"])
@pytest.mark.parametrize("as_of", ["31/12/2024", "01/02/2024"], ids=["day-first", "ambiguous"])
def test_as_of_not_in_iso_8601_is_refused_with_the_option_and_an_accepted_form(tmp_path, command, as_of):
    args = [command, "--data", str(tmp_path), "--as-of", as_of]  # an empty directory: nothing may be read
    if command == "score":
        args += ["--out", str(tmp_path / "scores.csv")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"--as-of {as_of!r} is not an ISO 8601 date; use e.g. {ISO_EXAMPLE}" in result.output
    assert "contract" not in result.output  # refused before the (empty) data was looked at


def test_as_of_with_a_zone_is_the_same_instant_in_naive_utc():
    assert _cutoff("2024-12-31T02:00:00+02:00") == pd.Timestamp("2024-12-31 00:00")
    assert _cutoff("2024-12-31") == pd.Timestamp("2024-12-31")


@pytest.mark.parametrize("option", ["--start", "--end", "--as-of"])
def test_simulate_refuses_a_date_option_not_in_iso_8601(tmp_path, option):
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "sim"), option, "31/12/2024"])
    assert result.exit_code == 2
    flat = " ".join(result.output.replace("│", " ").split())  # the usage error box wraps its lines
    assert option in flat and "'31/12/2024' is not an ISO 8601 date" in flat and "2024-12-31T09:30:00Z" in flat
    assert not (tmp_path / "sim").exists()


def test_simulate_reads_a_zoned_as_of_as_utc(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--customers", "50", "--as-of", "2025-01-01T03:00+03:00"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "truth" / "meta.json").read_text())["as_of"].startswith("2025-01-01T00:00:00")
