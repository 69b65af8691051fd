"""Find, read, parse and validate the tables of a CRM export directory, optionally before a cutoff.

A data directory holds one file per table, `NAME.parquet` or `NAME.csv` (Parquet wins when both exist).
Reading parses every column the contract knows, keeps extra columns as read, and validates in one pass, so
that a broken export is reported with every problem at once. With `as_of`, rows at or after it are dropped
(exclusive cutoff), inside pyarrow for Parquet files, and a cutoff that leaves no customer is a problem.
A header is checked before the file is parsed: duplicated column names are refused, and so is a CSV whose
header reads as one column holding ';' or a tab (the contract's CSV is comma-separated; such a file is not
read with a guessed delimiter).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.parsing import parse_columns, to_text
from crmdata.rules import ContractError, Problem, check_header, check_references, check_table, is_blank
from crmdata.schema import FORMATS, REFERENCING_TABLES, TABLES, TableSpec, table_spec
from crmdata.timeutil import utc_cutoff

# CSV cells read as missing in non-text columns; text columns treat only the empty cell as missing,
# so that a region "NA" or an industry "None" survives.
CSV_NA_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "<NA>", "NaT", "#N/A")


@dataclass
class TableRead:
    """One table as read: parsed frame (index = file data rows), problems, and what the summary needs."""

    name: str
    path: Path | None = None
    frame: pd.DataFrame | None = None
    problems: list[Problem] = field(default_factory=list)
    file_rows: int = 0
    keep: pd.Series | None = None  # as_of mask still to apply (None: already applied or no as_of)
    customer_ids: pd.Series | None = None  # all customer ids of the file (customers only)


def find_table_file(data_dir: Path | str, name: str) -> Path | None:
    """The file holding table `name` in `data_dir`: NAME.parquet, else NAME.csv, else None."""
    for fmt in FORMATS:
        path = Path(data_dir) / f"{name}.{fmt}"
        if path.is_file():
            return path
    return None


def _header(path: Path) -> list[str]:
    """The column names as the file stores them (pandas would rename a repeated CSV name `name.1`)."""
    if path.suffix == ".parquet":
        return list(pq.read_schema(path).names)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def _read_csv(path: Path, spec: TableSpec) -> pd.DataFrame:
    """Read a CSV with text and timestamp columns as strings (no inference), numbers left to the parser."""
    header = pd.read_csv(path, nrows=0).columns
    as_text = set(spec.text_columns) | set(spec.timestamp_columns)
    dtype = {c: "str" for c in header if c in as_text}
    na_values = {c: ([""] if c in spec.text_columns else list(CSV_NA_VALUES)) for c in header}
    return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=na_values)


def _parquet_bound(field_type: pa.DataType, as_of: pd.Timestamp) -> pa.Scalar:
    """`as_of` as a scalar of the column's timestamp type, rounded up so `t < bound` equals `t < as_of`."""
    bound = as_of.ceil(field_type.unit)
    if field_type.tz is not None:
        bound = bound.tz_localize("UTC")
    return pa.scalar(bound, type=field_type)


def _read_parquet(path: Path, time_column: str, as_of: pd.Timestamp | None) -> tuple[pd.DataFrame, int, bool]:
    """Read a Parquet file, pushing `time < as_of` into pyarrow when the column is a timestamp.

    Returns the frame (index = data rows of the file), the file's row count and whether as_of was applied.
    """
    parquet = pq.ParquetFile(path)
    file_rows = parquet.metadata.num_rows
    schema = parquet.schema_arrow
    field_type = schema.field(time_column).type if time_column in schema.names else None
    if as_of is None or field_type is None or not pa.types.is_timestamp(field_type):
        frame = parquet.read().to_pandas()
        return frame.set_axis(pd.RangeIndex(len(frame)), axis=0), file_rows, False
    bound = _parquet_bound(field_type, as_of)
    times = parquet.read(columns=[time_column]).column(time_column)
    rows = np.flatnonzero(pc.fill_null(pc.less(times, bound), False).to_numpy(zero_copy_only=False))
    frame = pq.read_table(path, filters=pc.field(time_column) < bound).to_pandas()
    if len(frame) != len(rows):  # the pushed-down scan disagrees with the mask: fall back to a full read
        frame = parquet.read().to_pandas().iloc[rows]
    return frame.set_axis(pd.Index(rows), axis=0), file_rows, True


def _read_customer_ids(path: Path) -> pd.Series:
    """Every customer_id of a customers Parquet file (for reference checks when as_of cut the frame)."""
    ids = pq.read_table(path, columns=["customer_id"]).column("customer_id").to_pandas()
    return to_text(ids)


def _read_raw(path: Path, spec: TableSpec, as_of: pd.Timestamp | None) -> tuple[pd.DataFrame, int, bool]:
    """Read one file as stored; returns the frame, the file's data row count and whether as_of was applied."""
    if path.suffix == ".parquet":
        return _read_parquet(path, spec.time_column, as_of)
    frame = _read_csv(path, spec)
    return frame, len(frame), False


def _read_one(data_dir: Path, name: str, as_of: pd.Timestamp | None, funnel: Funnel) -> TableRead:
    """Locate, read, parse and validate one table; as_of is pushed down or left in `keep` for later."""
    spec = table_spec(name)
    read = TableRead(name, find_table_file(data_dir, name))
    if read.path is None:
        if spec.required:
            read.problems.append(
                Problem(
                    f"{name}.parquet or {name}.csv",
                    None,
                    (),
                    f"a {name} table ({name}.parquet or {name}.csv)",
                    0,
                    f"required file is missing from {data_dir}",
                )
            )
        return read
    file = read.path.name
    try:
        read.problems += check_header(_header(read.path), file)
        if read.problems:
            return read
        raw, read.file_rows, applied = _read_raw(read.path, spec, as_of)
    except (OSError, ValueError, pa.ArrowException, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "Parquet" if read.path.suffix == ".parquet" else "CSV"
        issue = f"cannot be read ({error})"
        read.problems.append(Problem(file, None, (), f"a readable {kind} file", 0, issue))
        return read
    if spec.required and read.file_rows == 0:
        read.problems.append(Problem(file, None, (), f"at least one {name} row", 0, "has no data rows"))
    read.frame, problems = parse_columns(raw, spec, file)
    read.problems += problems + check_table(read.frame, spec, file, funnel)
    if name == "customers" and "customer_id" in read.frame.columns:
        read.customer_ids = _read_customer_ids(read.path) if applied else read.frame["customer_id"]
    if as_of is not None and not applied and spec.time_column in read.frame.columns:
        read.keep = read.frame[spec.time_column].lt(as_of)
    if spec.required and as_of is not None and read.file_rows and not read.problems:
        read.problems += _nothing_before(read, spec, as_of)
    return read


def _nothing_before(read: TableRead, spec: TableSpec, as_of: pd.Timestamp) -> list[Problem]:
    """A problem when a required table has rows but none before the cutoff (every one is at or after it)."""
    kept = len(read.frame) if read.keep is None else int(read.keep.sum())
    if kept:
        return []
    cutoff = as_of.isoformat()
    issue = f"has no row before the cutoff {cutoff} (all {read.file_rows:,} rows are at or after it)"
    expected = f"at least one {spec.name} row before the cutoff (an earlier {spec.time_column} or a later cutoff)"
    return [Problem(read.path.name, spec.time_column, (), expected, 0, issue)]


def _finish(read: TableRead) -> pd.DataFrame | None:
    """The frame as handed out: as_of applied, index reset to 0..n-1."""
    if read.frame is None:
        return None
    frame = read.frame if read.keep is None else read.frame.loc[read.keep.to_numpy()]
    return frame.reset_index(drop=True)


def read_table(
    data_dir: Path | str,
    name: str,
    as_of: pd.Timestamp | str | None = None,
    funnel: Funnel = DEFAULT_FUNNEL,
) -> pd.DataFrame | None:
    """Read, parse and validate one table (None when an optional table is absent), before as_of if given.

    Raises ContractError listing every problem of this table (cross-table references are checked by
    `load_tables`). With as_of, Parquet rows at or after it are filtered inside pyarrow.
    """
    read = _read_one(Path(data_dir), name, utc_cutoff(as_of), funnel)
    if read.problems:
        raise ContractError(read.problems)
    return _finish(read)


def read_all(
    data_dir: Path, as_of: pd.Timestamp | None, funnel: Funnel, names: Sequence[str]
) -> tuple[dict[str, TableRead], list[Problem]]:
    """Read the named tables (customers always, for references) and collect every problem across them."""
    wanted = ["customers", *(n for n in names if n != "customers")]
    reads = {name: _read_one(data_dir, name, as_of, funnel) for name in wanted}
    problems = [p for read in reads.values() for p in read.problems]
    customer_ids = reads["customers"].customer_ids
    if customer_ids is not None:
        valid_ids = customer_ids[~is_blank(customer_ids)]
        for name in REFERENCING_TABLES:
            read = reads.get(name)
            if read is not None and read.frame is not None and read.path is not None:
                problems += check_references(read.frame, read.path.name, valid_ids)
    return reads, problems


def load_tables(
    data_dir: Path | str,
    as_of: pd.Timestamp | str | None = None,
    funnel: Funnel = DEFAULT_FUNNEL,
    tables: Iterable[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read and validate the tables of a directory; raises ContractError with every problem across all tables.

    `tables` limits which tables are returned (customers is still read to check references). Absent
    optional tables are absent from the result. References are checked against every customer in the file,
    so an event before as_of of a customer created after it is not an error.
    """
    names = list(TABLES) if tables is None else [table_spec(n).name for n in tables]
    reads, problems = read_all(Path(data_dir), utc_cutoff(as_of), funnel, names)
    if problems:
        raise ContractError(problems)
    loaded = {name: _finish(reads[name]) for name in names}
    return {name: frame for name, frame in loaded.items() if frame is not None}
