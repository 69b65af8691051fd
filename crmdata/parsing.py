"""Parse the contract's columns of a table as read: text as pandas `str`, naive UTC timestamps, float numbers.

Timestamps stored as text (every CSV one) are read as ISO 8601 only: `31/12/2024` or `01/02/2024` is a problem
showing an accepted form, never a guess. Without a zone they are UTC; with one they are converted to UTC.
Parquet timestamp columns are taken as stored (tz-aware ones converted to UTC).

Unparseable and missing required values become problems (every offending row at once), not exceptions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmdata.rules import Problem, examples, is_blank, row_problem
from crmdata.schema import TableSpec
from crmdata.timeutil import ISO_EXAMPLE


def to_text(values: pd.Series) -> pd.Series:
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


def parse_columns(raw: pd.DataFrame, spec: TableSpec, file: str) -> tuple[pd.DataFrame, list[Problem]]:
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
            problems += row_problem(
                file,
                column,
                frame,
                bad,
                "not an ISO 8601 timestamp" + examples(original[bad]),
                f"an ISO 8601 timestamp, e.g. {ISO_EXAMPLE}",
            )
            missing = frame[column].isna() & ~bad
        elif column in spec.numeric_columns:
            frame[column], bad = _parse_number(original)
            problems += row_problem(file, column, frame, bad, "not a number" + examples(original[bad]), "a number")
            missing = frame[column].isna() & ~bad
        else:
            frame[column] = to_text(original)
            missing = is_blank(frame[column]) if column in spec.required_columns else None
        if column in spec.required_columns:
            problems += row_problem(file, column, frame, missing, "missing", "a value (required column)")
    return frame, problems
