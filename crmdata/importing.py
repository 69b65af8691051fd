"""Apply an import mapping to a CRM's export files: the contract's tables out, or every problem at once.

Pure functions on DataFrames (`import_tables`) plus the file edges (`read_exports`, `import_dir`). Export files are
read as text (blank cells are missing values); a row is named by the row number a spreadsheet shows (the header
is row 1, so the first data row is row 2), and filters keep those numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmdata.mapping import ANY_VALUE, Long, Lookup, Mapping, MappingError, Source, Wide
from crmdata.rules import MAX_EXAMPLES_SHOWN, MAX_ROWS_SHOWN
from crmdata.schema import TABLES
from crmdata.writing import write_table

ISO = "ISO 8601"


def _rows_issue(where: str, file: str, values: pd.Series, mask: pd.Series, issue: str) -> list[str]:
    """`key: file column 'c', rows 2, 7: N values are <issue> (e.g. 'x')`, rows as a spreadsheet numbers them
    (the export's data row 0 is row 2); nothing when no row offends."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return []
    count = int(mask.sum())
    rows = ", ".join(str(int(i) + 2) for i in values.index[mask][:MAX_ROWS_SHOWN])
    rows += ", ..." if count > MAX_ROWS_SHOWN else ""
    shown = ", ".join(repr(v) for v in values[mask].drop_duplicates().head(MAX_EXAMPLES_SHOWN))
    noun = f"row{'s' if count != 1 else ''} {rows}: {count} value{'s are' if count != 1 else ' is'}"
    return [f"{where}: {file} column '{values.name}', {noun} {issue} (e.g. {shown})"]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype("str").str.strip().eq("")


def parse_dates(values: pd.Series, fmt: str | None) -> tuple[pd.Series, pd.Series]:
    """Naive UTC timestamps of text in `fmt` (strptime; ISO 8601 when None) and the mask of present values that
    do not parse. A format with a zone (%z) is converted to UTC; without one the stamps are taken as UTC."""
    present = ~_blank(values)
    text = values.where(present).astype("str").str.strip()
    parsed = pd.to_datetime(text.where(present), errors="coerce", utc=True, format=fmt or "ISO8601")
    parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    return parsed, present & parsed.isna()


def _dates(values: pd.Series, fmt: str | None, where: str, file: str) -> tuple[pd.Series, list[str]]:
    """Parse one export date column (named by `values.name`); a bad format or unparseable cells name `where`."""
    try:
        parsed, bad = parse_dates(values, fmt)
    except ValueError as exc:
        return pd.Series(pd.NaT, index=values.index), [f"{where}: the date format {fmt!r} is not usable ({exc})"]
    expected = f"not dates in the format {fmt!r}" if fmt else f"not {ISO} dates (declare their strptime format)"
    return parsed, _rows_issue(where, file, values, bad, expected)


def map_values(values: pd.Series, table: dict[str, str], unmapped: str) -> tuple[pd.Series, pd.Series]:
    """Values through a value map (`"*"` catches the rest); returns them and the mask of refused values (present,
    not in the map, no catch-all, and the rule is "refuse"). Blank cells stay missing."""
    present = ~_blank(values)
    stripped = values.where(present).astype("str").str.strip()
    mapped = stripped.map({k.strip(): v for k, v in table.items() if k != ANY_VALUE})
    missing = present & mapped.isna()
    if ANY_VALUE in table:
        return mapped.mask(missing, table[ANY_VALUE]), missing & False
    if unmapped == "keep":
        return mapped.mask(missing, stripped), missing & False
    return mapped, missing


def _needed_columns(prefix: str, source: Source) -> dict[str, str]:
    """Export column -> the mapping key that names it, for every column the source reads."""
    needed = {name: f'{prefix}.columns."{name}"' for name in source.columns}
    needed |= {name: f'{prefix}.where."{name}"' for name in source.where}
    if source.lookup is not None:
        needed[source.lookup.column] = f"{prefix}.lookup.column"
    if source.wide is not None:
        needed |= {name: f'{prefix}.wide.columns."{name}"' for name in source.wide.columns}
        if source.wide.id is not None:
            needed[source.wide.id] = f"{prefix}.wide.id"
    if source.long is not None:
        for part in ("id", "stage", "timestamp"):
            if getattr(source.long, part) is not None:
                needed[getattr(source.long, part)] = f"{prefix}.long.{part}"
    return needed


def _missing_columns(frame: pd.DataFrame, needed: dict[str, str], file: str) -> list[str]:
    return [f"{where}: {file} has no column '{name}'" for name, where in needed.items() if name not in frame.columns]


def _lookup_ids(frame, lookup: Lookup, exports, prefix, file) -> tuple[pd.Series | None, pd.Series, list[str]]:
    """customer_id of each row through the lookup file, the mask of rows kept, and the refused rows' issues."""
    where, keep = f"{prefix}.lookup", pd.Series(True, index=frame.index)
    if lookup.file not in exports:
        return None, keep, [f"{where}.file: no file {lookup.file!r} in the export directory"]
    other = exports[lookup.file]
    absent = [
        f"{where}.{part}: {lookup.file} has no column '{getattr(lookup, part)}'"
        for part in ("key", "id")
        if getattr(lookup, part) not in other.columns
    ]
    if absent:
        return None, keep, absent
    known = other.loc[~_blank(other[lookup.key])].drop_duplicates(lookup.key)
    table = dict(zip(known[lookup.key].str.strip(), known[lookup.id], strict=True))
    ids = frame[lookup.column].astype("str").str.strip().map(table)
    unmatched = ids.isna() | _blank(ids)
    if lookup.unmatched == "drop":
        return ids, ~unmatched, []
    issue = f"not found in {lookup.file} column '{lookup.key}' (or set {where}.unmatched = \"drop\")"
    return ids, ~unmatched, _rows_issue(f"{where}.column", file, frame[lookup.column], unmatched, issue)


def _typed(values: pd.Series, table: str, column: str, fmt, where, file) -> tuple[pd.Series, list[str]]:
    """One contract column from text: timestamps parsed, numbers as floats, text with blanks missing."""
    spec = TABLES[table]
    if column in spec.timestamp_columns:
        return _dates(values, fmt, where, file)
    if column in spec.numeric_columns:
        present = ~_blank(values)
        numbers = pd.to_numeric(values.where(present).astype("str").str.strip(), errors="coerce")
        bad = present & numbers.isna()
        return numbers.astype("float64"), _rows_issue(where, file, values, bad, "not numbers")
    return values.astype("str").str.strip().where(~_blank(values)), []


def _map_column(source, prefix, file, column, values) -> tuple[pd.Series, list[str]]:
    """Values of a contract column through its value map, if the source declares one."""
    if column not in source.values:
        return values, []
    mapped, refused = map_values(values, source.values[column], source.unmapped)
    issue = f'not in {prefix}.values.{column} (add them, a "*" entry, or set {prefix}.unmapped = "keep")'
    return mapped, _rows_issue(f"{prefix}.values.{column}", file, values, refused, issue)


def _plain(table, prefix, source: Source, frame, file) -> tuple[pd.DataFrame, list[str]]:
    """Renamed, value-mapped and typed columns of a one-row-per-record source."""
    out, issues = pd.DataFrame(index=frame.index), []
    for name, column in source.columns.items():
        values = frame[name].rename(name)
        values, found = _map_column(source, prefix, file, column, values)
        where = f"{prefix}.dates.{column}" if column in source.dates else f'{prefix}.columns."{name}"'
        out[column], typed = _typed(values.rename(name), table, column, source.dates.get(column), where, file)
        issues += found + typed
    return out, issues


def _wide(wide: Wide, prefix, frame, file, ids) -> tuple[pd.DataFrame, list[str]]:
    """One funnel event per non-empty stage-date cell."""
    parts, issues = [], []
    for name, stage in wide.columns.items():
        stamps, found = _dates(frame[name], wide.format, f'{prefix}.wide.columns."{name}"', file)
        issues += found
        kept = stamps.notna()
        parts.append(pd.DataFrame({"customer_id": ids[kept], "timestamp": stamps[kept], "stage": stage}))
    return pd.concat(parts) if parts else pd.DataFrame(columns=["customer_id", "timestamp", "stage"]), issues


def _long(long: Long, source: Source, prefix, frame, file, ids) -> tuple[pd.DataFrame, list[str]]:
    """One funnel event per stage-history row, value-mapped; a customer's repeats of the same stage dropped (a
    history also records changes of amount or close date), rows without a customer, stage or time skipped."""
    stamps, issues = _dates(frame[long.timestamp], long.format, f"{prefix}.long.timestamp", file)
    stages, found = _map_column(source, prefix, file, "stage", frame[long.stage].rename(long.stage))
    events = pd.DataFrame({"customer_id": ids, "timestamp": stamps, "stage": stages}).dropna()
    events = events.sort_values(["customer_id", "timestamp"], kind="stable")
    repeat = events["stage"].eq(events.groupby("customer_id")["stage"].shift())
    return events[~repeat], issues + found


def _customer_ids(source, prefix, frame, file, exports) -> tuple[pd.Series | None, pd.Series, list[str]]:
    """The customer ids a wide, long or looked-up source gives each row, and the rows kept."""
    keep = pd.Series(True, index=frame.index)
    if source.lookup is not None:
        return _lookup_ids(frame, source.lookup, exports, prefix, file)
    section = source.wide or source.long
    if section is None:
        return None, keep, []
    if section.id is None:
        kind = "wide" if source.wide is not None else "long"
        return None, keep, [f"{prefix}.{kind}.id: required key is missing (or give {prefix}.lookup)"]
    return frame[section.id].astype("str").str.strip().where(~_blank(frame[section.id])), keep, []


def _where(frame: pd.DataFrame, where: dict[str, list[str]]) -> pd.DataFrame:
    for name, allowed in where.items():
        frame = frame[frame[name].astype("str").str.strip().isin([a.strip() for a in allowed])]
    return frame


def source_frame(table, prefix, source: Source, exports) -> tuple[pd.DataFrame | None, list[str]]:
    """One source's rows of a contract table (index: the export's data rows), or the issues that stop it."""
    if source.file not in exports:
        return None, [f"{prefix}.file: no file {source.file!r} in the export directory"]
    frame = exports[source.file]
    issues = _missing_columns(frame, _needed_columns(prefix, source), source.file)
    if issues:
        return None, issues
    frame = _where(frame, source.where)
    ids, keep, issues = _customer_ids(source, prefix, frame, source.file, exports)
    if issues and ids is None:
        return None, issues
    if source.wide is not None:
        out, found = _wide(source.wide, prefix, frame[keep], source.file, ids[keep])
    elif source.long is not None:
        out, found = _long(source.long, source, prefix, frame[keep], source.file, ids[keep])
    else:
        out, found = _plain(table, prefix, source, frame[keep], source.file)
        if ids is not None:
            out["customer_id"] = ids[keep]
    return out, issues + found


def import_tables(mapping: Mapping, exports: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The contract tables a mapping makes of export frames (file name -> text frame); MappingError lists every
    problem of every source at once."""
    parts: dict[str, list[pd.DataFrame]] = {}
    issues: list[str] = []
    for table, prefix, source in mapping.sources():
        frame, found = source_frame(table, prefix, source, exports)
        issues += found
        if frame is not None:
            parts.setdefault(table, []).append(frame)
    if issues:
        raise MappingError(issues)
    tables = {}
    for table, frames in parts.items():
        frame = pd.concat(frames, ignore_index=True)
        if table == "funnel_events":
            frame = frame.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
        tables[table] = frame[[c for c in TABLES[table].columns if c in frame.columns]]
    return tables


def read_exports(from_dir: Path | str, mapping: Mapping) -> dict[str, pd.DataFrame]:
    """The export files a mapping names, read as text (blank cells empty strings, every cell kept as written)."""
    from_dir = Path(from_dir)
    files = {source.file for _, _, source in mapping.sources()}
    files |= {source.lookup.file for _, _, source in mapping.sources() if source.lookup is not None}
    exports = {}
    for name in sorted(files):
        path = from_dir / name
        if path.is_file():
            exports[name] = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return exports


def import_dir(from_dir: Path | str, mapping: Mapping, out_dir: Path | str, fmt: str = "parquet") -> dict[str, int]:
    """Import an export directory into a contract directory; returns the rows written per table."""
    tables = import_tables(mapping, read_exports(from_dir, mapping))
    for name, frame in tables.items():
        write_table(frame, out_dir, name, fmt)
    return {name: len(frame) for name, frame in tables.items()}
