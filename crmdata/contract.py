"""The data contract of a CRM export directory: which tables and columns exist, how to read and validate them.

A data directory holds one file per table, `NAME.parquet` or `NAME.csv` (Parquet wins when both exist).
Reading parses every column the contract knows (ids and text as pandas `str`, timestamps as naive UTC
`datetime64[ns]`, numbers as `float64`), keeps extra columns as read, and validates in one vectorised pass,
so that a broken export is reported with every problem at once: file, column, row numbers, expectation.
Row numbers are 0-based data rows of the file (the header line is not counted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.timeutil import utc_cutoff

FORMATS = ("parquet", "csv")
MAX_ROWS_SHOWN = 5
MAX_EXAMPLES_SHOWN = 3
# CSV cells read as missing in non-text columns; text columns treat only the empty cell as missing,
# so that a region "NA" or an industry "None" survives.
CSV_NA_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "<NA>", "NaT", "#N/A")


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract: its columns and how each is parsed."""

    name: str
    required_columns: tuple[str, ...]
    optional_columns: tuple[str, ...]
    timestamp_columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    id_columns: tuple[str, ...]
    required: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """All contract columns, required first."""
        return self.required_columns + self.optional_columns

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Contract columns parsed as strings (ids, channels, stages, categories)."""
        parsed = set(self.timestamp_columns) | set(self.numeric_columns)
        return tuple(c for c in self.columns if c not in parsed)

    @property
    def time_column(self) -> str:
        """The column `as_of` filters on."""
        return TIME_COLUMN[self.name]


TABLES: dict[str, TableSpec] = {
    "customers": TableSpec(
        "customers",
        required_columns=("customer_id", "created_at"),
        optional_columns=("source_channel", "industry", "region", "employees", "annual_revenue"),
        timestamp_columns=("created_at",),
        numeric_columns=("employees", "annual_revenue"),
        id_columns=("customer_id",),
        required=True,
    ),
    "touchpoints": TableSpec(
        "touchpoints",
        required_columns=("customer_id", "timestamp", "channel"),
        optional_columns=("interaction", "campaign_id", "cost", "satisfaction"),
        timestamp_columns=("timestamp",),
        numeric_columns=("cost", "satisfaction"),
        id_columns=("customer_id", "campaign_id"),
    ),
    "funnel_events": TableSpec(
        "funnel_events",
        required_columns=("customer_id", "timestamp", "stage"),
        optional_columns=(),
        timestamp_columns=("timestamp",),
        numeric_columns=(),
        id_columns=("customer_id",),
    ),
    "orders": TableSpec(
        "orders",
        required_columns=("customer_id", "order_id", "timestamp", "amount"),
        optional_columns=("channel", "product_category"),
        timestamp_columns=("timestamp",),
        numeric_columns=("amount",),
        id_columns=("customer_id", "order_id"),
    ),
    "channel_spend": TableSpec(
        "channel_spend",
        required_columns=("period_start", "channel", "spend"),
        optional_columns=(),
        timestamp_columns=("period_start",),
        numeric_columns=("spend",),
        id_columns=(),
    ),
}

TIME_COLUMN: dict[str, str] = {
    "customers": "created_at",
    "touchpoints": "timestamp",
    "funnel_events": "timestamp",
    "orders": "timestamp",
    "channel_spend": "period_start",
}

# Tables whose customer_id must name a row of customers.
REFERENCING_TABLES = ("touchpoints", "funnel_events", "orders")
# Where channel names appear (orders.channel is the transaction channel, a different vocabulary).
CHANNEL_COLUMNS = (("customers", "source_channel"), ("touchpoints", "channel"), ("channel_spend", "channel"))
UNIQUE_COLUMNS = (("customers", "customer_id"), ("orders", "order_id"))


@dataclass(frozen=True)
class Problem:
    """One validation finding: where it is (file, column, rows), how many rows, and what was expected."""

    file: str
    column: str | None
    rows: tuple[int, ...]
    expected: str
    count: int
    issue: str = "invalid"  # what is wrong, as a predicate of the rows ("not a number", "missing")

    @property
    def table(self) -> str:
        """The table name, the file name without its extension."""
        return self.file.split(".", 1)[0]

    def __str__(self) -> str:
        """Render as `file: column 'c' (table.c): N rows (rows 3, 17) are ...; expected ...`."""
        where = self.file
        if self.column is not None:
            where += f": column '{self.column}' ({self.table}.{self.column})"
        if self.count == 0:
            return f"{where}: {self.issue}; expected {self.expected}"
        shown = ", ".join(str(r) for r in self.rows) + (", ..." if self.count > len(self.rows) else "")
        plural = self.count != 1
        rows_text = f"{self.count} row{'s' if plural else ''} (data row{'s' if plural else ''} {shown})"
        return f"{where}: {rows_text} {'are' if plural else 'is'} {self.issue}; expected {self.expected}"


class ContractError(ValueError):
    """The data breaks the contract; `.problems` holds every finding and str() lists them one per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        header = f"CRM data breaks the input contract ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))

    def __reduce__(self):
        """Pickle by problems, so the error survives process pools."""
        return (type(self), (self.problems,))


@dataclass
class ValidationReport:
    """The outcome of validating a directory: every problem plus a summary of what the data holds."""

    problems: list[Problem] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the directory meets the contract."""
        return not self.problems


@dataclass
class _TableRead:
    """One table as read: parsed frame (index = file data rows), problems, and what the summary needs."""

    name: str
    path: Path | None = None
    frame: pd.DataFrame | None = None
    problems: list[Problem] = field(default_factory=list)
    file_rows: int = 0
    keep: pd.Series | None = None  # as_of mask still to apply (None: already applied or no as_of)
    customer_ids: pd.Series | None = None  # all customer ids of the file (customers only)


# ---------------------------------------------------------------------------------------------- helpers


def _spec(name: str) -> TableSpec:
    """The spec of a contract table, or a ValueError naming the known tables."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; the contract has {', '.join(TABLES)}")
    return TABLES[name]


def _examples(values: pd.Series) -> str:
    """Up to three distinct offending values, quoted, for the message."""
    shown = []
    for value in values.drop_duplicates().head(MAX_EXAMPLES_SHOWN):
        text = str(value)
        shown.append(repr(text if len(text) <= 40 else text[:37] + "..."))
    return f" (e.g. {', '.join(shown)})" if shown else ""


def _row_problem(
    file: str, column: str, frame: pd.DataFrame, mask: pd.Series | np.ndarray, issue: str, expected: str
) -> list[Problem]:
    """A problem naming the first offending data rows of `mask`, or nothing when no row offends."""
    flags = np.asarray(mask, dtype=bool)
    count = int(flags.sum())
    if count == 0:
        return []
    positions = np.flatnonzero(flags)[:MAX_ROWS_SHOWN]
    rows = tuple(int(r) for r in frame.index.to_numpy()[positions])
    return [Problem(file, column, rows, expected, count, issue)]


def _is_in(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Vectorised membership of text values in a set, in pyarrow (pandas' string isin loops in Python)."""
    haystack = pa.array(allowed.dropna().unique()).cast(pa.large_string())
    needles = pa.array(values)
    if isinstance(needles, pa.ChunkedArray):
        needles = needles.combine_chunks()
    found = pc.is_in(needles.cast(pa.large_string()), value_set=haystack)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _blank(text: pd.Series) -> pd.Series:
    """True where a text value is missing or only whitespace."""
    return text.isna() | text.str.strip().eq("")


# ---------------------------------------------------------------------------------------------- parsing


def _to_text(values: pd.Series) -> pd.Series:
    """Strings in pandas' `str` dtype; integral floats lose their `.0` so ids stay ids."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if (finite == np.floor(finite)).all() and finite.abs().lt(2**53).all():
            values = values.astype("Int64")
    return values.astype("str")


def _timestamp_to_ns(parsed: pd.Series, present: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive UTC `datetime64[ns]` of tz-aware or naive stamps, and the mask of present values lost."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    out_of_range = parsed.notna() & ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max))
    parsed = parsed.mask(out_of_range).astype("datetime64[ns]")
    return parsed, present & parsed.isna()


def _parse_timestamp(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 (naive = UTC; offsets converted to UTC); returns the stamps and the unparseable mask."""
    present = values.notna()
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _timestamp_to_ns(values, present)
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"), present
    text = values.astype("str").str.strip()
    present = present & text.ne("")
    parsed = pd.to_datetime(text.where(present), errors="coerce", utc=True, format="ISO8601")
    return _timestamp_to_ns(parsed, present)


def _parse_number(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse numbers as float64; returns the numbers and the mask of present values not finite numbers."""
    present = values.notna()
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index, dtype="float64"), present
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
    else:
        text = values.astype("str").str.strip()
        present = present & text.ne("")
        numbers = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    bad = present & ~np.isfinite(numbers.to_numpy(na_value=np.nan))
    return numbers.mask(bad), bad


def _parse_columns(raw: pd.DataFrame, spec: TableSpec, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse the contract columns present; report missing required columns, bad and missing values."""
    problems: list[Problem] = []
    frame = raw.copy(deep=False)
    for column in spec.required_columns:
        if column not in frame.columns:
            expected = f"a required column '{column}'"
            problems.append(Problem(file, column, (), expected, 0, "column is missing"))
    for column in spec.columns:
        if column not in frame.columns:
            continue
        original = frame[column]
        if column in spec.timestamp_columns:
            frame[column], bad = _parse_timestamp(original)
            problems += _row_problem(
                file,
                column,
                frame,
                bad,
                "not an ISO 8601 timestamp" + _examples(original[bad]),
                "an ISO 8601 timestamp",
            )
            missing = frame[column].isna() & ~bad
        elif column in spec.numeric_columns:
            frame[column], bad = _parse_number(original)
            problems += _row_problem(file, column, frame, bad, "not a number" + _examples(original[bad]), "a number")
            missing = frame[column].isna() & ~bad
        else:
            frame[column] = _to_text(original)
            missing = _blank(frame[column]) if column in spec.required_columns else None
        if column in spec.required_columns:
            problems += _row_problem(file, column, frame, missing, "missing", "a value (required column)")
    return frame, problems


# ---------------------------------------------------------------------------------------------- checks


def _check_unique(frame: pd.DataFrame, file: str, column: str) -> list[Problem]:
    """Every row sharing a key value with another row is reported."""
    keys = frame[column]
    mask = keys.notna() & keys.duplicated(keep=False)
    return _row_problem(file, column, frame, mask, "duplicated" + _examples(keys[mask]), f"a unique {column}")


def _check_stages(frame: pd.DataFrame, file: str, funnel: Funnel) -> list[Problem]:
    """Stages outside the configured order (plus lost) are reported."""
    allowed = frozenset(funnel.allowed)
    stage = frame["stage"]
    mask = stage.notna().to_numpy() & ~_is_in(stage, pd.Series(sorted(allowed), dtype="str"))
    expected = f"a stage in ({', '.join(funnel.allowed)})"
    issue = "not a configured stage" + _examples(stage[mask])
    return _row_problem(file, "stage", frame, mask, issue, expected)


def _check_non_negative(frame: pd.DataFrame, file: str, column: str) -> list[Problem]:
    """Negative values are reported (spend cannot be negative; refunds live in orders, not here)."""
    mask = frame[column].lt(0)
    issue = "negative" + _examples(frame[column][mask])
    return _row_problem(file, column, frame, mask, issue, f"a {column} >= 0")


def _check_table(frame: pd.DataFrame, spec: TableSpec, file: str, funnel: Funnel) -> list[Problem]:
    """Table-level rules: unique keys, known stages, non-negative spend."""
    problems: list[Problem] = []
    for table, column in UNIQUE_COLUMNS:
        if table == spec.name and column in frame.columns:
            problems += _check_unique(frame, file, column)
    if spec.name == "funnel_events" and "stage" in frame.columns:
        problems += _check_stages(frame, file, funnel)
    if spec.name == "channel_spend" and "spend" in frame.columns:
        problems += _check_non_negative(frame, file, "spend")
    return problems


def _check_references(read: _TableRead, customer_ids: pd.Series) -> list[Problem]:
    """Rows whose customer_id is not a customer are reported."""
    frame = read.frame
    if frame is None or read.path is None or "customer_id" not in frame.columns:
        return []
    ids = frame["customer_id"]
    mask = ids.notna().to_numpy() & ~_is_in(ids, customer_ids)
    issue = "referencing a customer_id not in customers" + _examples(ids[mask])
    expected = "a customer_id present in customers"
    return _row_problem(read.path.name, "customer_id", frame, mask, issue, expected)


# ---------------------------------------------------------------------------------------------- reading


def find_table_file(data_dir: Path | str, name: str) -> Path | None:
    """The file holding table `name` in `data_dir`: NAME.parquet, else NAME.csv, else None."""
    for fmt in FORMATS:
        path = Path(data_dir) / f"{name}.{fmt}"
        if path.is_file():
            return path
    return None


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
    return _to_text(ids)


def _read_raw(path: Path, spec: TableSpec, as_of: pd.Timestamp | None) -> tuple[pd.DataFrame, int, bool]:
    """Read one file as stored; returns the frame, the file's data row count and whether as_of was applied."""
    if path.suffix == ".parquet":
        return _read_parquet(path, spec.time_column, as_of)
    frame = _read_csv(path, spec)
    return frame, len(frame), False


def _read_one(data_dir: Path, name: str, as_of: pd.Timestamp | None, funnel: Funnel) -> _TableRead:
    """Locate, read, parse and validate one table; as_of is pushed down or left in `keep` for later."""
    spec = _spec(name)
    read = _TableRead(name, find_table_file(data_dir, name))
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
        raw, read.file_rows, applied = _read_raw(read.path, spec, as_of)
    except (OSError, ValueError, pa.ArrowException, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "Parquet" if read.path.suffix == ".parquet" else "CSV"
        issue = f"cannot be read ({error})"
        read.problems.append(Problem(file, None, (), f"a readable {kind} file", 0, issue))
        return read
    if spec.required and read.file_rows == 0:
        read.problems.append(Problem(file, None, (), f"at least one {name} row", 0, "has no data rows"))
    read.frame, problems = _parse_columns(raw, spec, file)
    read.problems += problems + _check_table(read.frame, spec, file, funnel)
    if name == "customers" and "customer_id" in read.frame.columns:
        read.customer_ids = _read_customer_ids(read.path) if applied else read.frame["customer_id"]
    if as_of is not None and not applied and spec.time_column in read.frame.columns:
        read.keep = read.frame[spec.time_column].lt(as_of)
    return read


def _finish(read: _TableRead) -> pd.DataFrame | None:
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


def _read_all(
    data_dir: Path, as_of: pd.Timestamp | None, funnel: Funnel, names: Sequence[str]
) -> tuple[dict[str, _TableRead], list[Problem]]:
    """Read the named tables (customers always, for references) and collect every problem across them."""
    wanted = ["customers", *(n for n in names if n != "customers")]
    reads = {name: _read_one(data_dir, name, as_of, funnel) for name in wanted}
    problems = [p for read in reads.values() for p in read.problems]
    customer_ids = reads["customers"].customer_ids
    if customer_ids is not None:
        valid_ids = customer_ids[~_blank(customer_ids)]
        for name in REFERENCING_TABLES:
            if name in reads:
                problems += _check_references(reads[name], valid_ids)
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
    names = list(TABLES) if tables is None else [_spec(n).name for n in tables]
    reads, problems = _read_all(Path(data_dir), utc_cutoff(as_of), funnel, names)
    if problems:
        raise ContractError(problems)
    loaded = {name: _finish(reads[name]) for name in names}
    return {name: frame for name, frame in loaded.items() if frame is not None}


# ---------------------------------------------------------------------------------------------- reporting


def _iso(stamp: pd.Timestamp) -> str | None:
    """A timestamp as ISO 8601 text, None for NaT."""
    return None if pd.isna(stamp) else stamp.isoformat()


def _table_summary(read: _TableRead) -> dict:
    """File, row count and time range of one table as read (None values when absent)."""
    frame, time_column = read.frame, TIME_COLUMN[read.name]
    times = frame[time_column] if frame is not None and time_column in frame.columns else None
    return {
        "file": read.path.name if read.path is not None else None,
        "rows": read.file_rows,
        "time_column": time_column,
        "min": _iso(times.min()) if times is not None else None,
        "max": _iso(times.max()) if times is not None else None,
    }


def _distinct(reads: dict[str, _TableRead], where: Iterable[tuple[str, str]]) -> set[str]:
    """Distinct non-blank values of the given (table, column) pairs."""
    seen: set[str] = set()
    for name, column in where:
        frame = reads[name].frame
        if frame is not None and column in frame.columns:
            values = frame[column]
            seen.update(values[~_blank(values)].unique().tolist())
    return seen


def _summary(reads: dict[str, _TableRead], funnel: Funnel) -> dict:
    """What the directory holds: per table file/rows/time range, the channels and the stages seen."""
    seen_stages = _distinct(reads, [("funnel_events", "stage")])
    order = list(funnel.allowed)
    return {
        "tables": {name: _table_summary(read) for name, read in reads.items()},
        "channels": sorted(_distinct(reads, CHANNEL_COLUMNS)),
        "stages": [s for s in order if s in seen_stages] + sorted(seen_stages - set(order)),
    }


def validate_dir(data_dir: Path | str, funnel: Funnel = DEFAULT_FUNNEL) -> ValidationReport:
    """Validate every table of a directory without raising; the report lists all problems and a summary."""
    reads, problems = _read_all(Path(data_dir), None, funnel, list(TABLES))
    return ValidationReport(problems=problems, summary=_summary(reads, funnel))


def format_summary(report: ValidationReport) -> str:
    """A short human summary: rows and time range per table, channels, stages, problem count."""
    lines = []
    for name, info in report.summary.get("tables", {}).items():
        if info["file"] is None:
            lines.append(f"{name:<14} absent")
            continue
        span = f"{info['min']} .. {info['max']}" if info["min"] is not None else "no timestamps"
        lines.append(f"{name:<14} {info['file']:<22} {info['rows']:>12,} rows  {info['time_column']}: {span}")
    lines.append(f"channels: {', '.join(report.summary.get('channels', [])) or '-'}")
    lines.append(f"stages:   {', '.join(report.summary.get('stages', [])) or '-'}")
    count = len(report.problems)
    lines.append("contract: ok" if report.ok else f"contract: {count} problem{'s' if count != 1 else ''}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- writing


def _csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text (naive UTC, `T` separator, only the precision needed)."""
    out = df.copy(deep=False)
    for column in out.columns:
        values = out[column]
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        out[column] = values.astype("str").str.replace(" ", "T", regex=False)
    return out


def write_table(df: pd.DataFrame, data_dir: Path | str, name: str, fmt: str = "parquet") -> Path:
    """Write `df` as NAME.parquet or NAME.csv in `data_dir` (no index; same frame, same bytes)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(data_dir) / f"{name}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        _csv_ready(df).to_csv(path, index=False, lineterminator="\n")
    return path
