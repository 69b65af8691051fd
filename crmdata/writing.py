"""Write a table as the contract reads it back: Parquet as is, CSV with ISO 8601 naive UTC timestamps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmdata.schema import FORMATS


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
