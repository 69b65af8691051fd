"""`crmdata.importing` and `crmdata.mapping`: vendor export shapes -> the contract, and errors that name the key.

The example exports in tests/crmdata/exports/ hold 40 simulated customers in HubSpot's and Salesforce's shapes
(made by tests/crmdata/vendor_exports.py); a larger simulated export checks the reshapes against the simulator.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from crmdata.contract import validate_dir
from crmdata.importing import import_dir, import_tables, read_exports
from crmdata.mapping import BUILTIN_DIR, MappingError, builtin_mapping, parse_mapping, read_mapping
from simulator.simulate import SimConfig, simulate
from tests.crmdata.vendor_exports import hubspot_export, salesforce_export

EXPORTS = Path(__file__).parent / "exports"
ROOT = Path(__file__).resolve().parents[2]


def _import(text: str, files: dict[str, str], tmp_path: Path) -> dict[str, pd.DataFrame]:
    """Import CSV texts (file name -> content) in tmp_path through a mapping given as TOML text."""
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    mapping = parse_mapping(text)
    return import_tables(mapping, read_exports(tmp_path, mapping))


def _problems(text: str, files: dict[str, str], tmp_path: Path) -> list[str]:
    with pytest.raises(MappingError) as caught:
        _import(text, files, tmp_path)
    return caught.value.issues


CONTACTS = (
    "Record ID,Create Date,Original Source,Became a Lead Date,Became a Marketing Qualified Lead Date\n"
    "101,2024-01-05 09:30,Paid Search,2024-01-05 09:30,2024-02-01 10:00\n"
    "102,2024-01-06 11:00,Organic Social,2024-01-06 11:00,\n"
    "103,2024-01-07 12:00,Offline Sources,2024-01-07 12:00,\n"
)
CONTACTS_TOML = """
[customers]
file = "contacts.csv"
columns = { "Record ID" = "customer_id", "Create Date" = "created_at", "Original Source" = "source_channel" }
dates = { created_at = "%Y-%m-%d %H:%M" }
values.source_channel = { "Paid Search" = "search", "Organic Social" = "social", "Offline Sources" = "event" }

[funnel_events]
file = "contacts.csv"
wide = { id = "Record ID", format = "%Y-%m-%d %H:%M", columns = { "Became a Lead Date" = "lead", \
"Became a Marketing Qualified Lead Date" = "mql" } }
"""


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce"])
def test_each_shipped_mapping_imports_its_example_export_into_a_valid_directory(vendor, tmp_path):
    rows = import_dir(EXPORTS / vendor, read_mapping(builtin_mapping(vendor)), tmp_path, "csv")
    assert rows["customers"] == 40 and rows["funnel_events"] > 40 and rows["orders"] > 0
    report = validate_dir(tmp_path)
    assert report.ok, [str(p) for p in report.problems]
    assert set(report.summary["channels"]) <= {"search", "social", "email", "event", "referral", "website", "other"}
    assert {"lead", "won", "lost"} <= set(report.summary["stages"])


def test_the_shipped_mappings_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["crmdata"]
    shipped = {p.relative_to(BUILTIN_DIR.parent).as_posix() for p in BUILTIN_DIR.glob("*.toml")}
    assert shipped == {"mappings/hubspot.toml", "mappings/salesforce.toml"}
    assert all(any(Path(name).match(pattern) for pattern in patterns) for name in shipped)


def test_wide_stage_dates_become_one_event_per_filled_cell_in_the_declared_format(tmp_path):
    tables = _import(CONTACTS_TOML, {"contacts.csv": CONTACTS}, tmp_path)
    events = tables["funnel_events"]
    assert events.values.tolist() == [
        ["101", pd.Timestamp("2024-01-05 09:30"), "lead"],
        ["101", pd.Timestamp("2024-02-01 10:00"), "mql"],
        ["102", pd.Timestamp("2024-01-06 11:00"), "lead"],
        ["103", pd.Timestamp("2024-01-07 12:00"), "lead"],
    ]
    assert tables["customers"]["source_channel"].tolist() == ["search", "social", "event"]


def test_a_stage_history_keeps_stage_changes_only_and_finds_the_customer_through_a_lookup(tmp_path):
    text = """
[customers]
file = "leads.csv"
columns = { Id = "customer_id", CreatedDate = "created_at" }

[funnel_events]
file = "opportunity_history.csv"
lookup = { file = "leads.csv", column = "OpportunityId", key = "ConvertedOpportunityId", id = "Id" }
long = { stage = "StageName", timestamp = "CreatedDate" }
values.stage = { Prospecting = "opportunity", Qualification = "opportunity", "Closed Won" = "won" }
"""
    files = {
        "leads.csv": "Id,CreatedDate,ConvertedOpportunityId\n00Q1,2024-01-01T08:00:00.000Z,006A\n00Q2,2024-01-02,\n",
        "opportunity_history.csv": "OpportunityId,CreatedDate,StageName,Amount\n"
        "006A,2024-02-01T10:00:00.000Z,Prospecting,\n"
        "006A,2024-02-03T10:00:00.000Z,Prospecting,5000\n"
        "006A,2024-02-05T10:00:00.000+02:00,Qualification,5000\n"
        "006A,2024-03-01T10:00:00.000Z,Closed Won,5000\n",
    }
    events = _import(text, files, tmp_path)["funnel_events"]
    assert events.values.tolist() == [
        ["00Q1", pd.Timestamp("2024-02-01 10:00"), "opportunity"],
        ["00Q1", pd.Timestamp("2024-03-01 10:00"), "won"],
    ]


def test_an_unknown_key_is_named_with_its_place_in_the_mapping():
    with pytest.raises(MappingError) as caught:
        parse_mapping(CONTACTS_TOML.replace('file = "contacts.csv"\nwide', 'file = "contacts.csv"\nwidth'))
    assert caught.value.issues == ["mapping.funnel_events.width: unknown key"]
    with pytest.raises(MappingError) as caught:
        parse_mapping(CONTACTS_TOML.replace('"Original Source" = "source_channel"', '"Original Source" = "channel"'))
    assert caught.value.issues[0].startswith("mapping.customers.columns.\"Original Source\": 'channel' is not a column")


def test_a_missing_export_column_names_the_mapping_key_that_reads_it(tmp_path):
    contacts = CONTACTS.replace("Became a Lead Date", "Lead Date")
    issues = _problems(CONTACTS_TOML, {"contacts.csv": contacts}, tmp_path)
    assert issues == [
        "mapping.funnel_events.wide.columns.\"Became a Lead Date\": contacts.csv has no column 'Became a Lead Date'"
    ]


def test_a_date_not_in_the_declared_format_names_key_file_column_and_spreadsheet_row(tmp_path):
    contacts = CONTACTS.replace("2024-02-01 10:00", "01/02/2024 10:00")
    issues = _problems(CONTACTS_TOML, {"contacts.csv": contacts}, tmp_path)
    assert issues == [
        'mapping.funnel_events.wide.columns."Became a Marketing Qualified Lead Date": contacts.csv column '
        "'Became a Marketing Qualified Lead Date', row 2: 1 value is not dates in the format '%Y-%m-%d %H:%M' "
        "(e.g. '01/02/2024 10:00')"
    ]


def test_an_unusable_date_format_names_its_key(tmp_path):
    issues = _problems(
        CONTACTS_TOML.replace('created_at = "%Y-%m-%d %H:%M"', 'created_at = "%Q"'),
        {"contacts.csv": CONTACTS},
        tmp_path,
    )
    assert len(issues) == 1 and issues[0].startswith(
        "mapping.customers.dates.created_at: the date format '%Q' is not usable"
    )


def test_dates_without_a_declared_format_must_be_iso_8601(tmp_path):
    text = CONTACTS_TOML.replace('dates = { created_at = "%Y-%m-%d %H:%M" }\n', "")
    contacts = CONTACTS.replace("103,2024-01-07 12:00", "103,07/01/2024 12:00")
    issues = _problems(text, {"contacts.csv": contacts}, tmp_path)
    assert issues == [
        "mapping.customers.columns.\"Create Date\": contacts.csv column 'Create Date', row 4: 1 value is not "
        "ISO 8601 dates (declare their strptime format) (e.g. '07/01/2024 12:00')"
    ]


def test_an_unmapped_value_is_refused_by_default_with_its_rows_and_kept_when_the_mapping_says_so(tmp_path):
    contacts = CONTACTS.replace("Offline Sources", "Direct Traffic")
    issues = _problems(CONTACTS_TOML, {"contacts.csv": contacts}, tmp_path)
    assert len(issues) == 1
    assert issues[0].startswith(
        "mapping.customers.values.source_channel: contacts.csv column 'Original Source', row 4:"
    )
    assert "'Direct Traffic'" in issues[0]
    kept = CONTACTS_TOML.replace(
        'file = "contacts.csv"\ncolumns', 'file = "contacts.csv"\nunmapped = "keep"\ncolumns', 1
    )
    tables = _import(kept, {"contacts.csv": contacts}, tmp_path)
    assert tables["customers"]["source_channel"].tolist() == ["search", "social", "Direct Traffic"]
    caught = CONTACTS_TOML.replace('"Offline Sources" = "event"', '"*" = "other"')
    tables = _import(caught, {"contacts.csv": contacts}, tmp_path)
    assert tables["customers"]["source_channel"].tolist() == ["search", "social", "other"]


def test_every_problem_of_an_import_is_reported_at_once(tmp_path):
    contacts = CONTACTS.replace("Offline Sources", "Radio").replace("2024-02-01 10:00", "soon")
    issues = _problems(
        CONTACTS_TOML.replace("[funnel_events]\n", '[orders]\nfile = "deals.csv"\n\n[funnel_events]\n'),
        {"contacts.csv": contacts},
        tmp_path,
    )
    keys = [issue.split(":")[0] for issue in issues]
    assert keys == [
        "mapping.customers.values.source_channel",
        'mapping.funnel_events.wide.columns."Became a Marketing Qualified Lead Date"',
        "mapping.orders.file",
    ]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """300 simulated customers and their HubSpot and Salesforce exports."""
    root = tmp_path_factory.mktemp("vendor")
    sim = simulate(SimConfig(customers=300, seed=4))
    return {
        "tables": sim.tables,
        "hubspot": hubspot_export(sim.tables, root / "hubspot"),
        "salesforce": salesforce_export(sim.tables, root / "salesforce"),
    }


def test_hubspot_import_gives_the_first_date_of_each_lifecycle_stage_the_simulator_recorded(simulated, tmp_path):
    mapping = read_mapping(builtin_mapping("hubspot"))
    tables = import_tables(mapping, read_exports(simulated["hubspot"], mapping))
    truth = simulated["tables"]["funnel_events"]
    truth = truth[truth["stage"] != "negotiation"]  # HubSpot has no such lifecycle stage
    firsts = truth.groupby(["customer_id", "stage"])["timestamp"].min().dt.floor("min").reset_index()
    firsts["customer_id"] = firsts["customer_id"].str[1:].astype(int).astype(str)
    got = tables["funnel_events"].groupby(["customer_id", "stage"])["timestamp"].min().reset_index()
    merged = firsts.merge(got, on=["customer_id", "stage"], how="outer", indicator=True, suffixes=("", "_got"))
    lost_after_won = merged["stage"].eq("lost") & merged["_merge"].eq("left_only")  # no lost deal once won
    assert merged.loc[~lost_after_won, "_merge"].eq("both").all()
    assert (merged.loc[~lost_after_won, "timestamp"] == merged.loc[~lost_after_won, "timestamp_got"]).all()
    assert len(tables["orders"]) == len(simulated["tables"]["orders"])


def test_salesforce_import_gives_every_won_customer_its_won_event_and_repeat_orders(simulated):
    mapping = read_mapping(builtin_mapping("salesforce"))
    tables = import_tables(mapping, read_exports(simulated["salesforce"], mapping))
    truth_events, truth_orders = simulated["tables"]["funnel_events"], simulated["tables"]["orders"]
    won = set(truth_events.loc[truth_events["stage"] == "won", "customer_id"].str[1:])
    events = tables["funnel_events"]
    assert set(events.loc[events["stage"] == "won", "customer_id"].str[3:]) == won
    orders = tables["orders"]
    assert (
        orders.groupby("customer_id").size().sort_values().tolist()
        == truth_orders.groupby("customer_id").size().sort_values().tolist()
    )
    repeats = events.groupby("customer_id")["stage"].shift().eq(events["stage"])
    assert not repeats.any()  # consecutive history rows of one stage (amount changes) are one event


def test_a_date_format_for_a_column_that_is_not_a_date_is_refused():
    with pytest.raises(MappingError) as caught:
        parse_mapping(
            CONTACTS_TOML.replace('dates = { created_at = "%Y-%m-%d %H:%M" }', 'dates = { source_channel = "%Y" }')
        )
    assert caught.value.issues == [
        "mapping.customers.dates.source_channel: not a date column of customers (created_at)"
    ]


LOOKUP_TOML = """
[customers]
file = "leads.csv"
columns = { Id = "customer_id", CreatedDate = "created_at" }

[orders]
file = "opportunities.csv"
lookup = { file = "leads.csv", column = "AccountId", key = "ConvertedAccountId", id = "Id" }
columns = { Id = "order_id", CloseDate = "timestamp", Amount = "amount" }
"""
LOOKUP_FILES = {
    "leads.csv": "Id,CreatedDate,ConvertedAccountId\n00Q1,2024-01-01,001A\n00Q2,2024-01-02,\n",
    "opportunities.csv": "Id,AccountId,CloseDate,Amount\n006A,001A,2024-02-01,100\n006B,001Z,2024-02-02,50\n",
}


def test_a_row_the_lookup_cannot_place_is_refused_with_its_row_or_dropped_when_the_mapping_says_so(tmp_path):
    issues = _problems(LOOKUP_TOML, LOOKUP_FILES, tmp_path)
    assert issues == [
        "mapping.orders.lookup.column: opportunities.csv column 'AccountId', row 3: 1 value is not found in "
        "leads.csv column 'ConvertedAccountId' (or set mapping.orders.lookup.unmatched = \"drop\") (e.g. '001Z')"
    ]
    dropping = LOOKUP_TOML.replace('id = "Id" }', 'id = "Id", unmatched = "drop" }')
    orders = _import(dropping, LOOKUP_FILES, tmp_path)["orders"]
    assert orders[["customer_id", "order_id", "amount"]].values.tolist() == [["00Q1", "006A", 100.0]]
