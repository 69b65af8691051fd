"""The data contract of a CRM export directory: which tables and columns exist, how to read and validate them.

A data directory holds one file per table, `NAME.parquet` or `NAME.csv` (Parquet wins when both exist).
Reading parses every column the contract knows (ids and text as pandas `str`, timestamps as naive UTC
`datetime64[ns]`, numbers as `float64`), keeps extra columns as read, and validates in one vectorised pass,
so that a broken export is reported with every problem at once: file, column, row numbers, expectation.
Row numbers are those a spreadsheet shows: the header is row 1, the first data row is row 2; a Parquet file is
numbered the same way, so that it matches once converted to a sheet. Timestamps are ISO 8601 (a CSV column of
`31/12/2024` is refused, never guessed day- or month-first); without a zone they are UTC, with one converted.

This module is the contract's public face; each concern has its own home: `crmdata.schema` (tables and
columns), `crmdata.parsing` (column types), `crmdata.rules` (problems and the rules that find them),
`crmdata.reading` (find and read tables), `crmdata.validation` (a whole directory with its summary) and
`crmdata.writing` (write a table).
"""

from crmdata.reading import CSV_NA_VALUES, find_table_file, load_tables, read_table
from crmdata.rules import ContractError, Problem
from crmdata.schema import (
    CHANNEL_COLUMNS,
    FORMATS,
    NON_NEGATIVE_COLUMNS,
    RANGED_COLUMNS,
    REFERENCING_TABLES,
    TABLES,
    TIME_COLUMN,
    UNIQUE_COLUMNS,
    TableSpec,
)
from crmdata.validation import ValidationReport, format_summary, validate_dir
from crmdata.writing import write_table

__all__ = [
    "CHANNEL_COLUMNS",
    "CSV_NA_VALUES",
    "FORMATS",
    "NON_NEGATIVE_COLUMNS",
    "RANGED_COLUMNS",
    "REFERENCING_TABLES",
    "TABLES",
    "TIME_COLUMN",
    "UNIQUE_COLUMNS",
    "ContractError",
    "Problem",
    "TableSpec",
    "ValidationReport",
    "find_table_file",
    "format_summary",
    "load_tables",
    "read_table",
    "validate_dir",
    "write_table",
]
