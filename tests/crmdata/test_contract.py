"""The input data contract: reading, parsing, every validation rule, as_of filtering and round trips."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmdata import reading
from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.reading import find_table_file, load_tables, read_table
from crmdata.rules import ContractError, Problem
from crmdata.schema import TABLES, TIME_COLUMN
from crmdata.timeutil import ISO_EXAMPLE
from crmdata.validation import format_summary, validate_dir
from crmdata.writing import write_table
from tests.factories import ts

FORMATS = ["parquet", "csv"]
ISO_EXPECTED = f"an ISO 8601 timestamp, e.g. {ISO_EXAMPLE}"


def valid_tables() -> dict[str, pd.DataFrame]:
    """A small, valid CRM export in the dtypes read_table returns."""
    customers = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C2", "C3", "C4", "C5", "C6"], dtype="str"),
            "created_at": ts("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-02-01", "2024-03-01"),
            "source_channel": pd.Series(["search", "social", "email", "event", None, "referral"], dtype="str"),
            "industry": pd.Series(["retail", "finance", None, "software", "retail", "finance"], dtype="str"),
            "region": pd.Series(["north", "south", "east", "west", "NA", "north"], dtype="str"),
            "employees": [10.0, 250.0, np.nan, 40.0, 5.0, 1200.0],
            "annual_revenue": [1e6, 2.5e7, 3e5, np.nan, 1.5e5, 9e8],
        }
    )
    touchpoints = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C1", "C2", "C3", "C4", "C5", "C6", "C2"], dtype="str"),
            "timestamp": ts(
                "2024-01-01 10:00",
                "2024-01-05 09:30",
                "2024-01-03",
                "2024-01-04 12:00:00.5",
                "2024-01-10",
                "2024-02-02",
                "2024-03-02",
                "2024-02-15",
            ),
            "channel": pd.Series(
                ["search", "email", "social", "email", "event", "website", "referral", "phone"], dtype="str"
            ),
            "interaction": pd.Series(
                ["ad_click", "email_open", "ad_click", "email_open", "attend", "visit", None, "call"], dtype="str"
            ),
            "campaign_id": pd.Series(["S-1", "E-1", "SO-1", "E-1", "EV-1", None, None, None], dtype="str"),
            "cost": [2.5, 0.1, 0.6, 0.1, 45.0, np.nan, np.nan, np.nan],
            "satisfaction": [np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 4.0],
        }
    )
    funnel_events = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C1", "C1", "C2", "C2", "C3", "C4"], dtype="str"),
            "timestamp": ts(
                "2024-01-01", "2024-01-10", "2024-02-01", "2024-01-02", "2024-01-20", "2024-01-03", "2024-01-04"
            ),
            "stage": pd.Series(["lead", "mql", "won", "lead", "lost", "lead", "lead"], dtype="str"),
        }
    )
    orders = pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C1", "C1", "C2", "C4"], dtype="str"),
            "order_id": pd.Series(["O1", "O2", "O3", "O4", "O5"], dtype="str"),
            "timestamp": ts("2024-02-01", "2024-03-01", "2024-03-05", "2024-02-10", "2024-04-01"),
            "amount": [1200.0, 300.5, -300.5, 80.0, 45.25],
            "channel": pd.Series(["online", "store", "store", "phone", "online"], dtype="str"),
            "product_category": pd.Series(["software", "hardware", "hardware", None, "services"], dtype="str"),
        }
    )
    channel_spend = pd.DataFrame(
        {
            "period_start": ts("2024-01-01", "2024-01-01", "2024-01-08", "2024-01-08", "2024-01-15"),
            "channel": pd.Series(["search", "social", "search", "social", "event"], dtype="str"),
            "spend": [3200.0, 4100.0, 3000.0, 0.0, 2600.0],
        }
    )
    return {
        "customers": customers,
        "touchpoints": touchpoints,
        "funnel_events": funnel_events,
        "orders": orders,
        "channel_spend": channel_spend,
    }


def write_dir(path: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    """Write tables into `path` with the contract writer."""
    for name, frame in tables.items():
        write_table(frame, path, name, fmt)
    return path


def problems_at(data_dir: Path, file: str, column: str | None) -> list[Problem]:
    """The problems reported for one file and column."""
    return [p for p in validate_dir(data_dir).problems if p.file == file and p.column == column]


# ------------------------------------------------------------------------------------------ the spec


def test_spec_names_every_table_with_its_time_column():
    assert set(TABLES) == set(TIME_COLUMN)
    assert TABLES["customers"].required and not any(s.required for n, s in TABLES.items() if n != "customers")
    for name, spec in TABLES.items():
        assert TIME_COLUMN[name] in spec.required_columns
    assert DEFAULT_FUNNEL.stages == ("lead", "mql", "sql", "opportunity", "negotiation", "won")
    assert DEFAULT_FUNNEL.lost == "lost"


# ------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_directory_loads_with_contract_dtypes(tmp_path, fmt):
    tables = load_tables(write_dir(tmp_path, valid_tables(), fmt))
    assert set(tables) == set(TABLES)
    for name, frame in tables.items():
        spec = TABLES[name]
        for column in spec.timestamp_columns:
            assert frame[column].dtype == "datetime64[ns]", (name, column)
        for column in spec.numeric_columns:
            assert frame[column].dtype == "float64", (name, column)
        for column in spec.text_columns:
            assert pd.api.types.is_string_dtype(frame[column].dtype), (name, column)
    merged = tables["orders"].merge(tables["customers"], on="customer_id")
    assert len(merged) == len(tables["orders"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_absent_optional_tables_are_simply_absent(tmp_path, fmt):
    write_dir(tmp_path, {"customers": valid_tables()["customers"]}, fmt)
    assert validate_dir(tmp_path).ok
    assert set(load_tables(tmp_path)) == {"customers"}
    assert read_table(tmp_path, "orders") is None


def test_parquet_is_preferred_over_csv(tmp_path):
    customers = valid_tables()["customers"]
    write_table(customers, tmp_path, "customers", "csv")
    assert find_table_file(tmp_path, "customers") == tmp_path / "customers.csv"
    write_table(customers, tmp_path, "customers", "parquet")
    assert find_table_file(tmp_path, "customers") == tmp_path / "customers.parquet"
    assert find_table_file(tmp_path, "orders") is None


def test_csv_ids_and_codes_stay_text(tmp_path):
    (tmp_path / "customers.csv").write_text(
        "customer_id,created_at,region,extra_score\n007,2024-01-01,NA,1.5\n010,2024-01-02,None,2\n"
    )
    customers = read_table(tmp_path, "customers")
    assert customers["customer_id"].tolist() == ["007", "010"]
    assert customers["region"].tolist() == ["NA", "None"]
    assert customers["extra_score"].tolist() == [1.5, 2.0]


def test_extra_columns_are_kept(tmp_path):
    customers = valid_tables()["customers"].assign(crm_owner=pd.Series(list("abcdef"), dtype="str"))
    write_table(customers, tmp_path, "customers")
    assert read_table(tmp_path, "customers")["crm_owner"].tolist() == list("abcdef")


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(TABLES))
def test_write_then_read_gives_an_equal_frame(tmp_path, fmt, name):
    frame = valid_tables()[name]
    path = write_table(frame, tmp_path, name, fmt)
    assert path == tmp_path / f"{name}.{fmt}"
    pd.testing.assert_frame_equal(read_table(tmp_path, name), frame)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_table_is_deterministic(tmp_path, fmt):
    frame = valid_tables()["touchpoints"]
    first = write_table(frame, tmp_path / "a", "touchpoints", fmt).read_bytes()
    second = write_table(frame.copy(), tmp_path / "b", "touchpoints", fmt).read_bytes()
    assert first == second


def test_csv_timestamps_are_iso_8601(tmp_path):
    path = write_table(valid_tables()["touchpoints"], tmp_path, "touchpoints", "csv")
    stamps = pd.read_csv(path, dtype=str)["timestamp"]
    assert stamps.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?").all()


def test_write_table_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_table(valid_tables()["customers"], tmp_path, "customers", "xlsx")


# ------------------------------------------------------------------------------------------ validation rules


def test_missing_customers_file_is_reported(tmp_path):
    write_dir(tmp_path, {"orders": valid_tables()["orders"]})
    with pytest.raises(ContractError, match=r"customers\.parquet or customers\.csv"):
        load_tables(tmp_path)
    with pytest.raises(ContractError, match="required file is missing"):
        read_table(tmp_path, "customers")


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("customers", "created_at"),
        ("touchpoints", "channel"),
        ("funnel_events", "stage"),
        ("orders", "amount"),
        ("orders", "order_id"),
        ("channel_spend", "spend"),
    ],
    ids=lambda value: value,
)
def test_missing_required_column_is_reported(tmp_path, table, column):
    tables = valid_tables()
    tables[table] = tables[table].drop(columns=column)
    write_dir(tmp_path, tables)
    pattern = rf"{table}\.csv: column '{column}' \({table}\.{column}\): column is missing"
    with pytest.raises(ContractError, match=pattern):
        load_tables(tmp_path)


def test_missing_optional_column_is_fine(tmp_path):
    tables = valid_tables()
    tables["touchpoints"] = tables["touchpoints"].drop(columns=["cost", "satisfaction", "campaign_id"])
    assert validate_dir(write_dir(tmp_path, tables)).ok


@pytest.mark.parametrize(
    ("table", "column", "bad", "expected"),
    [
        ("orders", "amount", "12,50", "a number"),
        ("customers", "employees", "many", "a number"),
        ("touchpoints", "cost", "free", "a number"),
        ("touchpoints", "timestamp", "yesterday", ISO_EXPECTED),
        ("funnel_events", "timestamp", "2024-13-45", ISO_EXPECTED),
        ("channel_spend", "period_start", "01/02/2024", ISO_EXPECTED),
    ],
    ids=[
        "orders-amount",
        "customers-employees",
        "touchpoints-cost",
        "touchpoints-timestamp",
        "funnel-timestamp",
        "spend-period_start",
    ],
)
def test_unparseable_value_is_reported_with_file_column_and_rows(tmp_path, table, column, bad, expected):
    tables = valid_tables()
    frame = tables[table].astype({column: "object"})
    frame.loc[[1, 3], column] = bad
    tables[table] = frame
    write_dir(tmp_path, tables)
    pattern = rf"{table}\.csv: column '{column}' \({table}\.{column}\): 2 rows \(rows 3, 5\) are not"
    with pytest.raises(ContractError, match=pattern) as caught:
        load_tables(tmp_path)
    [problem] = [p for p in caught.value.problems if p.column == column]
    assert (problem.file, problem.rows, problem.count) == (f"{table}.csv", (3, 5), 2)
    assert problem.expected == expected
    assert repr(bad) in str(problem)


def test_text_typed_parquet_columns_are_parsed_and_checked(tmp_path):
    tables = valid_tables()
    tables["orders"]["amount"] = pd.Series(["1200", "300.5", "-300.5", "eighty", "45.25"], dtype="str")
    tables["orders"]["timestamp"] = pd.Series(
        ["2024-02-01", "2024-03-01T00:00:00Z", "2024-03-05 00:00:00", "2024-02-10", "someday"], dtype="str"
    )
    write_dir(tmp_path, tables, "parquet")
    problems = {p.column: p for p in validate_dir(tmp_path).problems}
    assert set(problems) == {"amount", "timestamp"}
    assert problems["amount"].rows == (5,) and problems["timestamp"].rows == (6,)
    assert all(p.file == "orders.parquet" for p in problems.values())


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("customers", "customer_id"),
        ("customers", "created_at"),
        ("touchpoints", "channel"),
        ("orders", "amount"),
        ("orders", "timestamp"),
        ("channel_spend", "spend"),
    ],
    ids=lambda value: value,
)
def test_missing_value_in_required_column_is_reported(tmp_path, table, column):
    tables = valid_tables()
    tables[table].loc[2, column] = None
    write_dir(tmp_path, tables)
    with pytest.raises(ContractError, match=rf"{table}\.{column}\): 1 row \(row 4\) is missing"):
        load_tables(tmp_path)


def test_missing_values_in_optional_columns_are_fine(tmp_path):
    tables = valid_tables()
    tables["customers"]["industry"] = pd.Series([None] * 6, dtype="str")
    tables["customers"]["employees"] = np.nan
    tables["orders"].loc[[0, 3], "channel"] = None
    assert validate_dir(write_dir(tmp_path, tables)).ok


@pytest.mark.parametrize(
    ("table", "column"), [("customers", "customer_id"), ("orders", "order_id")], ids=["customer_id", "order_id"]
)
def test_duplicate_key_is_reported_on_every_copy(tmp_path, table, column):
    tables = valid_tables()
    tables[table].loc[4, column] = tables[table].loc[1, column]
    write_dir(tmp_path, tables)
    pattern = rf"{table}\.{column}\): 2 rows \(rows 3, 6\) are duplicated"
    with pytest.raises(ContractError, match=pattern):
        load_tables(tmp_path)


@pytest.mark.parametrize("table", ["touchpoints", "funnel_events", "orders"])
def test_reference_to_unknown_customer_is_reported(tmp_path, table):
    tables = valid_tables()
    tables[table].loc[[0, 2], "customer_id"] = "C999"
    write_dir(tmp_path, tables)
    with pytest.raises(ContractError, match=rf"{table}\.customer_id\): 2 rows \(rows 2, 4\)") as caught:
        load_tables(tmp_path)
    assert "a customer_id present in customers" in str(caught.value)
    read_table(tmp_path, table)  # a single table cannot know the customers: no error


def test_unknown_stage_is_reported(tmp_path):
    tables = valid_tables()
    tables["funnel_events"].loc[[1, 5], "stage"] = ["closed", "Won"]
    write_dir(tmp_path, tables)
    with pytest.raises(ContractError, match=r"funnel_events\.stage\): 2 rows \(rows 3, 7\)") as caught:
        read_table(tmp_path, "funnel_events")
    assert "'closed', 'Won'" in str(caught.value)
    assert "lead, mql, sql, opportunity, negotiation, won, lost" in str(caught.value)


def test_negative_spend_is_reported(tmp_path):
    tables = valid_tables()
    tables["channel_spend"].loc[3, "spend"] = -10.0
    write_dir(tmp_path, tables)
    with pytest.raises(ContractError, match=r"channel_spend\.spend\): 1 row \(row 5\) is negative"):
        load_tables(tmp_path)


def test_refund_with_negative_amount_is_valid(tmp_path):
    tables = valid_tables()
    assert (tables["orders"]["amount"] < 0).any()
    orders = load_tables(write_dir(tmp_path, tables))["orders"]
    assert orders["amount"].min() == -300.5


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_customers_table_is_reported(tmp_path, fmt):
    write_table(valid_tables()["customers"].iloc[:0], tmp_path, "customers", fmt)
    with pytest.raises(ContractError, match=rf"customers\.{fmt}: has no data rows"):
        load_tables(tmp_path)


def test_empty_optional_table_is_fine(tmp_path):
    tables = valid_tables()
    tables["orders"] = tables["orders"].iloc[:0]
    loaded = load_tables(write_dir(tmp_path, tables))
    assert loaded["orders"].empty


def test_unreadable_file_is_reported_not_raised(tmp_path):
    write_dir(tmp_path, valid_tables(), "csv")
    (tmp_path / "orders.parquet").write_bytes(b"not parquet at all")
    [problem] = validate_dir(tmp_path).problems
    assert problem.file == "orders.parquet"
    assert "a readable Parquet file" in str(problem)


def test_every_problem_is_reported_in_one_pass(tmp_path):
    tables = valid_tables()
    tables["customers"].loc[5, "customer_id"] = "C1"
    tables["customers"] = tables["customers"].astype({"employees": "object"})
    tables["customers"].loc[0, "employees"] = "lots"
    tables["touchpoints"].loc[3, "customer_id"] = "C404"
    tables["touchpoints"] = tables["touchpoints"].astype({"timestamp": "object"})
    tables["touchpoints"].loc[6, "timestamp"] = "soon"
    tables["funnel_events"].loc[2, "stage"] = "closed"
    tables["orders"] = tables["orders"].drop(columns="amount")
    tables["orders"].loc[4, "order_id"] = "O1"
    tables["channel_spend"].loc[0, "spend"] = -1.0
    write_dir(tmp_path, tables)
    with pytest.raises(ContractError) as caught:
        load_tables(tmp_path)
    found = {(p.file, p.column) for p in caught.value.problems}
    assert found == {
        ("customers.csv", "customer_id"),
        ("customers.csv", "employees"),
        ("touchpoints.csv", "customer_id"),
        ("touchpoints.csv", "timestamp"),
        ("funnel_events.csv", "stage"),
        ("orders.csv", "amount"),
        ("orders.csv", "order_id"),
        ("channel_spend.csv", "spend"),
    }
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 + len(caught.value.problems)
    for table_column in ("customers.customer_id", "touchpoints.timestamp", "orders.amount", "channel_spend.spend"):
        assert table_column in str(caught.value)
    assert validate_dir(tmp_path).problems == caught.value.problems


def test_problem_shows_five_rows_and_the_total(tmp_path):
    tables = valid_tables()
    tables["touchpoints"].loc[:, "channel"] = None
    write_dir(tmp_path, tables)
    [problem] = problems_at(tmp_path, "touchpoints.csv", "channel")
    assert problem.rows == (2, 3, 4, 5, 6) and problem.count == 8
    assert "8 rows (rows 2, 3, 4, 5, 6, ...) are missing" in str(problem)


def test_problem_str_follows_the_documented_form():
    problem = Problem("orders.parquet", "amount", (5, 19), "a number", 2, "not a number")
    assert str(problem) == (
        "orders.parquet: column 'amount' (orders.amount): 2 rows (rows 5, 19) are not a number; expected a number"
    )


def test_contract_error_survives_pickling():
    import pickle

    error = ContractError([Problem("orders.csv", "amount", (1,), "a number", 1, "not a number")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems and str(copy) == str(error)


# ------------------------------------------------------------------------------------------ time handling


@pytest.mark.parametrize("fmt", FORMATS)
def test_as_of_excludes_rows_at_and_after_it(tmp_path, fmt):
    write_dir(tmp_path, valid_tables(), fmt)
    as_of = pd.Timestamp("2024-02-01")  # exactly customer C5's created_at, order O1 and a won event
    tables = load_tables(tmp_path, as_of=as_of)
    for name, frame in tables.items():
        assert (frame[TIME_COLUMN[name]] < as_of).all(), name
    assert tables["customers"]["customer_id"].tolist() == ["C1", "C2", "C3", "C4"]
    assert tables["orders"].empty
    assert "won" not in set(tables["funnel_events"]["stage"])
    assert len(tables["touchpoints"]) == 5
    pd.testing.assert_frame_equal(read_table(tmp_path, "touchpoints", as_of=as_of), tables["touchpoints"])


def test_as_of_may_be_tz_aware_or_text(tmp_path):
    write_dir(tmp_path, valid_tables(), "parquet")
    berlin = pd.Timestamp("2024-02-01 01:00", tz="Europe/Berlin")  # = 2024-02-01 00:00 UTC
    expected = read_table(tmp_path, "customers", as_of=pd.Timestamp("2024-02-01"))
    pd.testing.assert_frame_equal(read_table(tmp_path, "customers", as_of=berlin), expected)
    pd.testing.assert_frame_equal(read_table(tmp_path, "customers", as_of="2024-02-01"), expected)


def test_as_of_is_pushed_into_the_parquet_reader(tmp_path, monkeypatch):
    write_dir(tmp_path, valid_tables(), "parquet")
    seen = []
    real = reading.pq.read_table

    def spy(*args, **kwargs):
        seen.append(kwargs.get("filters"))
        return real(*args, **kwargs)

    monkeypatch.setattr(reading.pq, "read_table", spy)
    frame = read_table(tmp_path, "orders", as_of=pd.Timestamp("2024-03-01"))
    assert len(frame) == 2
    assert any(f is not None and "timestamp" in str(f) for f in seen)


def test_as_of_pushdown_rounds_a_finer_cutoff_up(tmp_path):
    orders = valid_tables()["orders"]
    orders["timestamp"] = orders["timestamp"].astype("datetime64[s]")
    write_table(orders, tmp_path, "orders")
    frame = read_table(tmp_path, "orders", as_of=pd.Timestamp("2024-03-01 00:00:00.000001"))
    assert frame["order_id"].tolist() == ["O1", "O2", "O4"]  # O2 at 2024-03-01 00:00:00 is before as_of


def test_rows_keep_file_numbers_after_as_of_pushdown(tmp_path):
    tables = valid_tables()
    tables["funnel_events"].loc[3, "stage"] = "closed"  # row 3 of the file, row 2 of the rows before as_of
    tables["funnel_events"].loc[0, "timestamp"] = pd.Timestamp("2024-06-01")
    write_dir(tmp_path, tables, "parquet")
    with pytest.raises(ContractError, match=r"1 row \(row 5\) is not a configured stage"):
        read_table(tmp_path, "funnel_events", as_of=pd.Timestamp("2024-05-01"))


def test_references_are_checked_against_all_customers_under_as_of(tmp_path):
    tables = valid_tables()
    tables["touchpoints"].loc[0, "customer_id"] = "C6"  # C6 is created 2024-03-01, after as_of
    write_dir(tmp_path, tables, "parquet")
    loaded = load_tables(tmp_path, as_of=pd.Timestamp("2024-02-01"))
    assert "C6" in set(loaded["touchpoints"]["customer_id"])
    assert "C6" not in set(loaded["customers"]["customer_id"])


def test_tz_aware_csv_timestamps_become_naive_utc(tmp_path):
    (tmp_path / "customers.csv").write_text(
        "customer_id,created_at\n"
        "C1,2024-01-01T12:00:00+02:00\n"
        "C2,2024-01-01T12:00:00Z\n"
        "C3,2024-01-01 12:00:00\n"
        "C4,2024-01-01T12:00:00-05:30\n"
    )
    customers = read_table(tmp_path, "customers")
    assert customers["created_at"].dtype == "datetime64[ns]"
    assert customers["created_at"].tolist() == list(
        pd.to_datetime(["2024-01-01 10:00", "2024-01-01 12:00", "2024-01-01 12:00", "2024-01-01 17:30"])
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_tz_aware_frame_columns_become_naive_utc(tmp_path, fmt):
    customers = valid_tables()["customers"]
    tokyo = customers["created_at"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    aware = customers.assign(created_at=tokyo)
    write_table(aware, tmp_path, "customers", fmt)
    pd.testing.assert_frame_equal(read_table(tmp_path, "customers"), customers)


def test_out_of_range_timestamp_is_unparseable(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,created_at\nC1,2024-01-01\nC2,3024-01-01\n")
    with pytest.raises(ContractError, match=r"customers\.created_at\): 1 row \(row 3\)"):
        read_table(tmp_path, "customers")


# ------------------------------------------------------------------------------------------ stages


def test_stage_order_is_configurable(tmp_path):
    tables = valid_tables()
    tables["funnel_events"]["stage"] = pd.Series(
        ["prospect", "demo", "customer", "prospect", "lost", "prospect", "demo"], dtype="str"
    )
    write_dir(tmp_path, tables)
    custom = Funnel.of(("prospect", "demo", "customer"))
    assert validate_dir(tmp_path, funnel=custom).ok
    assert load_tables(tmp_path, funnel=custom)["funnel_events"]["stage"].nunique() == 4
    # Under the default order the same rows are unknown, except the always allowed terminal "lost".
    with pytest.raises(ContractError, match=r"funnel_events\.stage\): 6 rows .* are not a configured stage"):
        load_tables(tmp_path)


def test_default_stages_are_rejected_under_a_custom_order(tmp_path):
    write_dir(tmp_path, valid_tables())
    [problem] = validate_dir(tmp_path, funnel=Funnel.of(("prospect", "customer"))).problems
    assert problem.column == "stage" and "a stage in (prospect, customer, lost)" in str(problem)


def test_a_funnel_needs_at_least_two_stages():
    with pytest.raises(ValueError, match="at least two"):
        Funnel.of(())


# ------------------------------------------------------------------------------------------ summary


def test_validate_dir_summarises_rows_ranges_channels_and_stages(tmp_path):
    write_dir(tmp_path, valid_tables(), "parquet")
    report = validate_dir(tmp_path)
    assert report.ok
    tables = report.summary["tables"]
    assert tables["customers"] == {
        "file": "customers.parquet",
        "rows": 6,
        "time_column": "created_at",
        "min": "2024-01-01T00:00:00",
        "max": "2024-03-01T00:00:00",
    }
    assert tables["orders"]["rows"] == 5
    channels = ["email", "event", "phone", "referral", "search", "social", "website"]
    assert report.summary["channels"] == channels
    assert report.summary["stages"] == ["lead", "mql", "won", "lost"]
    text = format_summary(report)
    assert re.search(r"customers\s+customers\.parquet\s+6 rows", text)
    assert "channels: email, event" in text and "stages:   lead, mql, won, lost" in text
    assert "contract: ok" in text


def test_summary_marks_absent_tables_and_counts_problems(tmp_path):
    tables = valid_tables()
    tables["customers"].loc[1, "customer_id"] = "C1"
    write_dir(tmp_path, {"customers": tables["customers"]})
    report = validate_dir(tmp_path)
    assert not report.ok
    text = format_summary(report)
    assert re.search(r"orders\s+absent", text) and "contract: 1 problem" in text
