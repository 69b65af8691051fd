"""Reading the input tables as of a cutoff into numpy arrays: timestamps, customer codes, encoded columns.

Every table becomes int64 nanoseconds (naive UTC) and integer customer codes 0..n-1 (positions in the
sorted customer index), so the feature families work with `np.bincount` and ufunc `.at` alone. Arrow-backed
columns are read by pyarrow directly, and an `ArrayTable` (the API's few rows) without pandas at all.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DAY_NS = 86_400 * 10**9
NAT = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max
_EMPTY = np.empty(0, np.int64)


def as_of_ns(as_of: pd.Timestamp | str) -> int:
    """The cutoff as int64 nanoseconds since the epoch, naive UTC."""
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


def timestamps_ns(col: pd.Series) -> np.ndarray:
    """A timestamp column as int64 nanoseconds since the epoch, naive UTC; NaT stays `NAT`."""
    values = col.values
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[ns]", copy=False).view("i8")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        col = pd.to_datetime(col, utc=True).dt.tz_localize(None)
    return col.to_numpy(dtype="datetime64[ns]").view("i8")


class ArrayTable:
    """A table as plain numpy columns, for the few rows of an API request (pandas' fixed costs dwarf them).

    `build_features` reads it like a DataFrame, with two differences: in `customers` every row is one
    customer (in output order) and `created_at` is int64 nanoseconds (naive UTC); in an event table
    `customer_id` holds int64 row positions in `customers` and `timestamp` int64 nanoseconds. Text columns
    are object arrays of `str` or None, numeric ones float64 with NaN.
    """

    def __init__(self, columns: dict[str, np.ndarray]):
        self._columns = columns

    @property
    def columns(self):
        return self._columns.keys()

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), ()))


def encode(col: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing) and the distinct values (object array) of a column.

    Arrow-backed columns (pandas' default `str`) are encoded by pyarrow directly, and an `ArrayTable`'s
    object arrays by a dict: the same result as `pd.factorize`, at a fraction of its fixed cost on the
    few rows of a scoring request.
    """
    if isinstance(col, np.ndarray) and col.dtype == object and len(col) <= 10_000:
        seen: dict = {}
        codes = [-1 if v is None or v != v else seen.setdefault(v, len(seen)) for v in col]
        return np.array(codes, dtype=np.int64), texts(list(seen))
    if _is_arrow(col.dtype):
        encoded = pc.dictionary_encode(col.array.__arrow_array__().combine_chunks())
        indices = encoded.indices
        codes = (indices if indices.null_count == 0 else indices.fill_null(-1)).to_numpy()
        uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
        is_text = pa.types.is_string(encoded.type.value_type) or pa.types.is_large_string(encoded.type.value_type)
        return codes.astype(np.int64), uniques if is_text else strings(uniques)
    codes, uniques = pd.factorize(col)
    return codes.astype(np.int64, copy=False), strings(uniques)


def as_floats(col: pd.Series) -> np.ndarray:
    """A column as float64, NaN where missing or not a number."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        return col.astype(np.float64, copy=False)
    if not pd.api.types.is_numeric_dtype(col.dtype):
        col = pd.to_numeric(col, errors="coerce")
    return col.to_numpy(dtype=float, na_value=np.nan)


@functools.lru_cache(maxsize=256)
def _positions(known: tuple[str, ...]) -> dict[str, int]:
    return {value: i for i, value in enumerate(known)}


def lookup(uniques: np.ndarray, known: tuple[str, ...], missing: int) -> np.ndarray:
    """Map codes from `encode` (-1 = missing, via the last slot) to positions in `known`, else `missing`."""
    pos = _positions(known)
    # A loop over the distinct values of a column (a handful), not over rows.
    return np.array([pos.get(str(v), missing) for v in uniques] + [missing], dtype=np.int64)


def _is_arrow(dtype: Any) -> bool:
    return getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype)


def _arrow_strings(values: pd.Series | pd.Index) -> pa.ChunkedArray | None:
    """The pyarrow string data behind a column or index, None if it is not arrow strings."""
    if not _is_arrow(values.dtype):
        return None
    data = values.array.__arrow_array__()
    return data if pa.types.is_string(data.type) or pa.types.is_large_string(data.type) else None


def _customer_codes(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each row's customer in `index` (-1 if unknown or missing)."""
    values, known = _arrow_strings(ids), _arrow_strings(index)
    if values is not None and known is not None:
        found = pc.index_in(values, value_set=known.combine_chunks().cast(values.type))
        return (found if found.null_count == 0 else found.fill_null(-1)).to_numpy().astype(np.int64)
    codes, uniques = encode(ids)
    return np.append(index.get_indexer(uniques), -1)[codes]


class Events:
    """The rows of one event table before `as_of` that belong to known customers, with customer codes."""

    def __init__(self, frame: pd.DataFrame | ArrayTable | None, index: pd.Index, as_of: int):
        self.frame = frame
        if frame is None or len(frame) == 0 or not len(index):
            self.rows, self.cust, self.t = _EMPTY, _EMPTY, _EMPTY
        else:
            if isinstance(frame, ArrayTable):  # row positions in the customers table, which `index` keeps whole
                t, cust = frame["timestamp"], frame["customer_id"]
                cust = np.where(cust < len(index), cust, -1)
            else:
                t = timestamps_ns(frame["timestamp"])
                cust = _customer_codes(frame["customer_id"], index)
            self.rows = np.flatnonzero((t < as_of) & (t != NAT) & (cust >= 0))
            self.cust = cust[self.rows]
            self.t = t[self.rows]
        self.age = as_of - self.t  # int64 ns, always > 0

    def _has(self, name: str) -> bool:
        return self.frame is not None and len(self.rows) > 0 and name in self.frame.columns

    def codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Codes of column `name` on the kept rows (-1 = missing) and its distinct values."""
        if not self._has(name):
            return np.full(len(self.rows), -1, np.int64), np.empty(0, dtype=object)
        codes, uniques = encode(self.frame[name])
        return codes[self.rows], uniques

    def floats(self, name: str) -> np.ndarray:
        """Column `name` on the kept rows as float64 (NaN where missing or absent)."""
        if not self._has(name):
            return np.full(len(self.rows), np.nan)
        return as_floats(self.frame[name])[self.rows]


def read_customers(customers: pd.DataFrame | ArrayTable | None, as_of: int) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Rows of the customers created before `as_of`, one per id (first wins), sorted by id; index; created."""
    if customers is None:
        raise ValueError("the customers table is required to build features")
    if isinstance(customers, ArrayTable):
        created = customers["created_at"]
        if not ((created < as_of) & (created != NAT)).all():
            raise ValueError("every customer of an ArrayTable must be created before the cutoff")
        rows = np.arange(len(created))
        return rows, pd.RangeIndex(len(rows), name="customer_id"), created
    created = timestamps_ns(customers["created_at"])
    ids = customers["customer_id"]
    data = _arrow_strings(ids)
    valid = True if data is not None and data.null_count == 0 else ids.notna().to_numpy()
    rows = np.flatnonzero((created < as_of) & (created != NAT) & valid)
    index = pd.Index(ids if len(rows) == len(ids) else ids.take(rows), name="customer_id", copy=False)
    if len(index) > 1 and not (index.is_monotonic_increasing and index.is_unique):
        order = index.argsort(kind="stable")
        rows, index = rows[order], index.take(order)
        first = ~index.duplicated()
        rows, index = rows[first], index[first]
    return rows, index, created[rows]


def column_strings(col: pd.Series | np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of a column as Python strings, None where missing (the categorical output format)."""
    if isinstance(col, np.ndarray):
        return texts(col[rows])
    data = _arrow_strings(col)
    if data is not None:
        return np.array(data.take(rows).to_pylist(), dtype=object)
    return strings(col.to_numpy(dtype=object)[rows])


def strings(values: Any) -> np.ndarray:
    """Plain Python `str` objects, None where missing (the categorical output format)."""
    arr = np.asarray(values, dtype=object)
    missing = pd.isna(arr)
    out = arr.astype(str).astype(object)
    out[missing] = None
    return out


def texts(values) -> np.ndarray:
    """Like `strings`, but text stays the very `str` object (as arrow text columns give it back)."""
    return np.array(
        [None if v is None or v != v else v if isinstance(v, str) else str(v) for v in values], dtype=object
    )


def pick(values: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The value (distinct values and codes from `encode`) at each of `rows`; None where a row is -1."""
    return np.append(values, None)[np.append(codes, -1)[rows]]
