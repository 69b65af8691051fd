"""Contract guards against exports that used to pass or fail obscurely: duplicated column names, negative
counts, a CSV in another delimiter, and a cutoff before every customer."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmdata.reading import load_tables, read_table
from crmdata.rules import ContractError
from crmdata.schema import NON_NEGATIVE_COLUMNS
from crmdata.validation import validate_dir
from tests.crmdata.test_contract import FORMATS, valid_tables, write_dir


def test_duplicated_csv_column_is_refused_by_name(tmp_path):
    write_dir(tmp_path, valid_tables())
    (tmp_path / "customers.csv").write_text(
        "customer_id,created_at,employees,region,employees\nC1,2024-01-01,10,north,12\nC2,2024-01-02,3,south,4\n"
    )
    with pytest.raises(ContractError, match=r"customers\.csv: column 'employees' .*appears 2 times") as caught:
        load_tables(tmp_path)
    assert "unique column names" in str(caught.value)


def test_duplicated_parquet_column_is_refused_by_name(tmp_path):
    write_dir(tmp_path, valid_tables(), "parquet")
    ids, created = pa.array(["C1", "C2"]), pa.array(pd.to_datetime(["2024-01-01", "2024-01-02"]))
    region = pa.array(["north", "south"])
    names = ["customer_id", "created_at", "region", "region"]
    table = pa.Table.from_arrays([ids, created, region, region], names=names)
    pq.write_table(table, tmp_path / "customers.parquet")
    with pytest.raises(ContractError, match=r"customers\.parquet: column 'region' .*appears 2 times"):
        read_table(tmp_path, "customers")


def test_counts_that_cannot_be_negative_are_declared():
    assert set(NON_NEGATIVE_COLUMNS) >= {
        ("customers", "employees"),
        ("customers", "annual_revenue"),
        ("touchpoints", "cost"),
        ("channel_spend", "spend"),
    }
    assert ("orders", "amount") not in NON_NEGATIVE_COLUMNS  # a negative amount is a refund


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("table", "column"),
    [("customers", "employees"), ("customers", "annual_revenue"), ("touchpoints", "cost")],
    ids=["employees", "revenue", "cost"],
)
def test_negative_count_is_refused_with_rows_and_expectation(tmp_path, fmt, table, column):
    tables = valid_tables()
    tables[table].loc[[1, 4], column] = [-3.0, -1.0]
    write_dir(tmp_path, tables, fmt)
    pattern = rf"{table}\.{fmt}: column '{column}' \({table}\.{column}\): 2 rows \(rows 3, 6\) are negative"
    with pytest.raises(ContractError, match=pattern) as caught:
        load_tables(tmp_path)
    assert f"expected {column} >= 0" in str(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_satisfaction_off_its_scale_is_refused_with_rows(tmp_path, fmt):
    tables = valid_tables()
    tables["touchpoints"]["satisfaction"] = 3.0
    tables["touchpoints"].loc[[0, 2], "satisfaction"] = [0.0, 9.0]
    tables["touchpoints"].loc[3, "satisfaction"] = None  # a touch that was not rated is fine
    write_dir(tmp_path, tables, fmt)
    pattern = rf"touchpoints\.{fmt}: column 'satisfaction' .*: 2 rows \(rows 2, 4\) are outside 1-5"
    with pytest.raises(ContractError, match=pattern) as caught:
        load_tables(tmp_path)
    assert "expected satisfaction between 1 and 5" in str(caught.value)


@pytest.mark.parametrize(("sep", "name"), [(";", "';'"), ("\t", "tab")], ids=["semicolon", "tab"])
def test_csv_in_another_delimiter_is_recognised(tmp_path, sep, name):
    write_dir(tmp_path, valid_tables())
    valid_tables()["customers"].to_csv(tmp_path / "customers.csv", sep=sep, index=False)
    [problem] = validate_dir(tmp_path).problems
    assert problem.file == "customers.csv" and problem.column is None
    assert f"looks {name}-separated" in str(problem) and "the contract expects commas" in str(problem)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cutoff_before_every_customer_is_explained(tmp_path, fmt):
    write_dir(tmp_path, valid_tables(), fmt)
    with pytest.raises(ContractError, match=rf"customers\.{fmt}: column 'created_at' .*no row before the cutoff"):
        load_tables(tmp_path, as_of="2023-06-01")
    with pytest.raises(ContractError, match="2023-06-01"):
        read_table(tmp_path, "customers", as_of="2023-06-01")
    assert len(load_tables(tmp_path, as_of="2024-01-02")["customers"]) == 1  # one customer before: fine
