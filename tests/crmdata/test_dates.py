"""Dates in tables and cutoffs are ISO 8601 or refused with an accepted form; zones become UTC; problems give the
row numbers a spreadsheet shows (header row 1, first data row 2), for CSV and Parquet alike."""

from __future__ import annotations

import pandas as pd
import pytest

from crmdata.reading import load_tables
from crmdata.rules import ContractError
from crmdata.timeutil import ISO_EXAMPLE, parse_iso, utc_cutoff
from crmdata.validation import validate_dir
from tests.crmdata.test_contract import valid_tables, write_dir


def _problem(data_dir, file: str, column: str):
    """The one problem of `file`'s `column` in a validation of `data_dir`."""
    [problem] = [p for p in validate_dir(data_dir).problems if p.file == file and p.column == column]
    return problem


@pytest.mark.parametrize(
    "bad",
    ["31/12/2024", "01/02/2024", "12/31/2024", "1735603200", "31.12.2024"],
    ids=["day-first", "ambiguous", "month-first", "unix-seconds", "dotted"],
)
def test_a_csv_date_column_not_in_iso_8601_is_refused_naming_file_column_rows_and_a_form(tmp_path, bad):
    tables = valid_tables()
    frame = tables["customers"].astype({"created_at": "object"})
    frame.loc[[1, 4], "created_at"] = bad
    tables["customers"] = frame
    write_dir(tmp_path, tables, "csv")
    with pytest.raises(ContractError) as caught:
        load_tables(tmp_path)
    text = str(caught.value)
    assert "customers.csv: column 'created_at' (customers.created_at): 2 rows (rows 3, 6)" in text
    assert repr(bad) in text and ISO_EXAMPLE in text


def test_csv_timestamps_with_a_zone_are_converted_to_utc_and_naive_ones_are_utc(tmp_path):
    tables = valid_tables()
    frame = tables["orders"].astype({"timestamp": "object"})
    frame.loc[0, "timestamp"] = "2024-02-01T02:30:00+02:00"
    frame.loc[1, "timestamp"] = "2024-02-01T00:30:00Z"
    frame.loc[2, "timestamp"] = "2024-02-01T00:30:00"
    frame.loc[3, "timestamp"] = "2024-01-31T19:30:00-05:00"
    tables["orders"] = frame
    write_dir(tmp_path, tables, "csv")
    stamps = load_tables(tmp_path)["orders"]["timestamp"]
    assert stamps.dt.tz is None
    assert (stamps.iloc[:4] == pd.Timestamp("2024-02-01 00:30")).all()


def test_parquet_timestamp_columns_are_taken_as_stored_and_zoned_ones_converted_to_utc(tmp_path):
    tables = valid_tables()
    local = pd.to_datetime(tables["orders"]["timestamp"]).dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    tables["orders"]["timestamp"] = local
    write_dir(tmp_path, tables, "parquet")
    stamps = load_tables(tmp_path)["orders"]["timestamp"]
    assert stamps.dt.tz is None
    assert stamps.tolist() == local.dt.tz_convert("UTC").dt.tz_localize(None).tolist()


def test_a_csv_problem_row_is_the_line_a_spreadsheet_shows(tmp_path):
    tables = valid_tables()
    tables["orders"] = tables["orders"].astype({"amount": "object"})
    tables["orders"].loc[[0, 3], "amount"] = "twelve"
    write_dir(tmp_path, tables, "csv")
    problem = _problem(tmp_path, "orders.csv", "amount")
    lines = (tmp_path / "orders.csv").read_text().splitlines()  # lines[0] is the header, sheet row 1
    assert problem.rows == (2, 5)
    assert all("twelve" in lines[row - 1] for row in problem.rows)
    assert "2 rows (rows 2, 5) are not a number" in str(problem)


@pytest.mark.parametrize(
    ("table", "column", "bad"),
    [("customers", "customer_id", None), ("touchpoints", "cost", -2.0), ("funnel_events", "stage", "nirvana")],
    ids=["missing", "negative", "unknown-stage"],
)
def test_parquet_problems_use_the_row_numbers_the_same_table_gets_as_csv(tmp_path, table, column, bad):
    tables = valid_tables()
    tables[table] = tables[table].astype({column: "object"})
    tables[table].loc[[2, 4], column] = bad
    as_parquet = _problem(write_dir(tmp_path / "parquet", tables, "parquet"), f"{table}.parquet", column)
    as_csv = _problem(write_dir(tmp_path / "csv", tables, "csv"), f"{table}.csv", column)
    assert as_parquet.rows == as_csv.rows == (4, 6)


def test_parquet_rows_after_an_as_of_push_down_keep_their_file_row_numbers(tmp_path):
    tables = valid_tables()
    touches = tables["touchpoints"].copy()
    late = touches.index[:3]
    touches.loc[late, "timestamp"] = pd.Timestamp("2030-01-01")  # dropped by the cutoff inside pyarrow
    touches.loc[touches.index[4], "cost"] = -1.0
    tables["touchpoints"] = touches
    write_dir(tmp_path, tables, "parquet")
    with pytest.raises(ContractError, match=r"touchpoints\.cost\): 1 row \(row 6\) is negative"):
        load_tables(tmp_path, as_of="2029-01-01")


@pytest.mark.parametrize("text", ["31/12/2024", "01/02/2024", "20/13/2024", "", "1735603200"])
def test_a_typed_date_not_in_iso_8601_is_refused_naming_where_and_a_form(text):
    with pytest.raises(ValueError) as caught:
        parse_iso(text, "--as-of")
    assert str(caught.value) == f"--as-of {text!r} is not an ISO 8601 date; use e.g. {ISO_EXAMPLE}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-12-31", "2024-12-31 00:00"),
        ("2024-12-31T09:30:00Z", "2024-12-31 09:30"),
        ("2024-12-31T11:30:00+02:00", "2024-12-31 09:30"),
        (" 2024-12-31T04:30-05:00 ", "2024-12-31 09:30"),
    ],
    ids=["date", "utc", "east", "west-padded"],
)
def test_a_typed_iso_date_is_naive_utc(text, expected):
    stamp = parse_iso(text, "--as-of")
    assert stamp == pd.Timestamp(expected) and stamp.tzinfo is None


def test_a_cutoff_given_as_text_to_the_library_is_iso_8601_too(tmp_path):
    with pytest.raises(ValueError, match=r"as_of '01/02/2024' is not an ISO 8601 date"):
        utc_cutoff("01/02/2024")
    write_dir(tmp_path, valid_tables(), "csv")
    with pytest.raises(ValueError, match=r"as_of '31/12/2024'"):
        load_tables(tmp_path, as_of="31/12/2024")
