"""The contract's rules and their findings: a `Problem` per broken rule, `ContractError` holding them all.

Problems name the file, the column, the first offending rows, how many rows offend and what was expected.
Rows are numbered as a spreadsheet shows them: the header is row 1 and the first data row is row 2. A Parquet
file is numbered the same way, as if it were opened as a sheet (its first row is row 2).

The header rules (unique column names, the comma delimiter) run before a file is parsed; the table-level rules
(unique keys, known stages, counts and spend not negative) and the cross-table reference rule run vectorised
over a parsed frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmdata.funnel import Funnel
from crmdata.schema import NON_NEGATIVE_COLUMNS, RANGED_COLUMNS, UNIQUE_COLUMNS, TableSpec

MAX_ROWS_SHOWN = 5
MAX_EXAMPLES_SHOWN = 3
# Spreadsheet row of the first data row: the header is row 1 (CSV and, by the same convention, Parquet).
FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class Problem:
    """One validation finding: where it is (file, column, spreadsheet rows), how many rows, and what was expected."""

    file: str
    column: str | None
    rows: tuple[int, ...]  # spreadsheet row numbers: header row 1, first data row 2
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
        rows_text = f"{self.count} row{'s' if plural else ''} (row{'s' if plural else ''} {shown})"
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


def examples(values: pd.Series) -> str:
    """Up to three distinct offending values, quoted, for the message."""
    shown = []
    for value in values.drop_duplicates().head(MAX_EXAMPLES_SHOWN):
        text = str(value)
        shown.append(repr(text if len(text) <= 40 else text[:37] + "..."))
    return f" (e.g. {', '.join(shown)})" if shown else ""


def row_problem(
    file: str, column: str, frame: pd.DataFrame, mask: pd.Series | np.ndarray, issue: str, expected: str
) -> list[Problem]:
    """A problem naming the first offending rows of `mask` as a spreadsheet numbers them, or nothing when none
    offends. The frame's index holds 0-based data rows of the file (kept through an `as_of` push-down)."""
    flags = np.asarray(mask, dtype=bool)
    count = int(flags.sum())
    if count == 0:
        return []
    positions = np.flatnonzero(flags)[:MAX_ROWS_SHOWN]
    rows = tuple(int(r) + FIRST_DATA_ROW for r in frame.index.to_numpy()[positions])
    return [Problem(file, column, rows, expected, count, issue)]


def is_in(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """Vectorised membership of text values in a set, in pyarrow (pandas' string isin loops in Python)."""
    haystack = pa.array(allowed.dropna().unique()).cast(pa.large_string())
    needles = pa.array(values)
    if isinstance(needles, pa.ChunkedArray):
        needles = needles.combine_chunks()
    found = pc.is_in(needles.cast(pa.large_string()), value_set=haystack)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def is_blank(text: pd.Series) -> pd.Series:
    """True where a text value is missing or only whitespace."""
    return text.isna() | text.str.strip().eq("")


def _check_unique(frame: pd.DataFrame, file: str, column: str) -> list[Problem]:
    """Every row sharing a key value with another row is reported."""
    keys = frame[column]
    mask = keys.notna() & keys.duplicated(keep=False)
    return row_problem(file, column, frame, mask, "duplicated" + examples(keys[mask]), f"a unique {column}")


def _check_stages(frame: pd.DataFrame, file: str, funnel: Funnel) -> list[Problem]:
    """Stages outside the configured order (plus lost) are reported."""
    allowed = frozenset(funnel.allowed)
    stage = frame["stage"]
    mask = stage.notna().to_numpy() & ~is_in(stage, pd.Series(sorted(allowed), dtype="str"))
    expected = f"a stage in ({', '.join(funnel.allowed)})"
    issue = "not a configured stage" + examples(stage[mask])
    return row_problem(file, "stage", frame, mask, issue, expected)


def _check_non_negative(frame: pd.DataFrame, file: str, column: str) -> list[Problem]:
    """Negative values are reported (counts, revenue, costs and spend; refunds live in orders, not here)."""
    mask = frame[column].lt(0)
    issue = "negative" + examples(frame[column][mask])
    return row_problem(file, column, frame, mask, issue, f"{column} >= 0")


def _check_range(frame: pd.DataFrame, file: str, column: str, low: float, high: float) -> list[Problem]:
    """Values outside a rating's scale are reported (a 0-10 score in a 1-5 column, a percentage)."""
    mask = frame[column].notna() & ~frame[column].between(low, high)
    issue = f"outside {low:g}-{high:g}" + examples(frame[column][mask])
    return row_problem(file, column, frame, mask, issue, f"{column} between {low:g} and {high:g}")


def check_header(columns: Sequence[str], file: str) -> list[Problem]:
    """Header rules, before parsing: every column name once, and a CSV read with the contract's commas.

    A header that is one name holding ';' or a tab is a file in another delimiter: it is refused with that
    said, rather than read with a guessed delimiter (such files often write decimal commas as well).
    """
    if len(columns) == 1 and file.endswith(".csv"):
        for delimiter, name in ((";", "';'"), ("\t", "tab")):
            if delimiter in str(columns[0]):
                issue = f"looks {name}-separated (its header is one column); the contract expects commas"
                return [Problem(file, None, (), "a comma-separated file", 0, issue)]
    counts = Counter(str(c) for c in columns)
    return [
        Problem(file, column, (), "unique column names", 0, f"appears {n} times in the header")
        for column, n in counts.items()
        if n > 1
    ]


def check_table(frame: pd.DataFrame, spec: TableSpec, file: str, funnel: Funnel) -> list[Problem]:
    """Table-level rules: unique keys, known stages, counts and spend not negative, ratings on their scale."""
    problems: list[Problem] = []
    for table, column in UNIQUE_COLUMNS:
        if table == spec.name and column in frame.columns:
            problems += _check_unique(frame, file, column)
    if spec.name == "funnel_events" and "stage" in frame.columns:
        problems += _check_stages(frame, file, funnel)
    for table, column in NON_NEGATIVE_COLUMNS:
        if table == spec.name and column in frame.columns:
            problems += _check_non_negative(frame, file, column)
    for table, column, low, high in RANGED_COLUMNS:
        if table == spec.name and column in frame.columns:
            problems += _check_range(frame, file, column, low, high)
    return problems


def check_references(frame: pd.DataFrame, file: str, customer_ids: pd.Series) -> list[Problem]:
    """Rows whose customer_id is not a customer are reported."""
    if "customer_id" not in frame.columns:
        return []
    ids = frame["customer_id"]
    mask = ids.notna().to_numpy() & ~is_in(ids, customer_ids)
    issue = "referencing a customer_id not in customers" + examples(ids[mask])
    expected = "a customer_id present in customers"
    return row_problem(file, "customer_id", frame, mask, issue, expected)
