"""The prospect store: the ranked list of open leads from the latest `crm-score score` run, in SQLite.

`write_prospects` keeps the rows with a conversion score (open leads: not won, not lost, no order before
the cutoff) and replaces the store atomically (a new file renamed over the old one), so readers never see a
half-written list. A prospect is *stalled* when `stall_ratio >= 2`: it has spent at least twice the typical
(median) time of its current funnel stage there. Every filter has a composite index with each ranking
(`expected_value` or `probability`, then `customer_id`), so that a filtered page is an index range scan and
keyset pagination (`cursor`) stays a few milliseconds deep into a million rows. A store that cannot be read
(damaged, cut short, not a prospect store) raises `StoreUnreadable`, with a reason and no path. A store written
before a column was added (`LATER_COLUMNS`) still reads, that column None. An empty list records why (`meta.note`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from serving.settings import PROSPECTS_FILE

STALLED_RATIO = 2.0
FILTER_COLUMNS = ("conversion_tier", "source_channel", "current_stage", "industry", "region", "stalled")
ORDER_KEYS = {"expected_value": "ev_key", "probability": "p_key"}
COLUMNS = (
    "customer_id",
    "conversion_probability",
    "conversion_score",
    "conversion_tier",
    "churn_probability",
    "churn_risk",
    "expected_clv",
    "expected_value",
    "value_decile",
    "source_channel",
    "current_stage",
    "industry",
    "region",
    "stall_ratio",
    "stalled",
    "top_reasons",
    "evidence",
    "model_kind",
)
LATER_COLUMNS = ("evidence", "model_kind")  # absent from a store written by an earlier version: read as None
_TYPES = {
    "customer_id": "TEXT NOT NULL PRIMARY KEY",
    "conversion_score": "INTEGER",
    "value_decile": "INTEGER",
    "stalled": "INTEGER NOT NULL",
    "ev_key": "REAL NOT NULL",
    "p_key": "REAL NOT NULL",
}
_TEXT = {
    "conversion_tier",
    "churn_risk",
    "source_channel",
    "current_stage",
    "industry",
    "region",
    "top_reasons",
    "evidence",
    "model_kind",
}
SQLITE_MAGIC = b"SQLite format 3\x00"
UNREADABLE = "unreadable"
_MISSING_KEY = -1.0  # ranks rows without a value after every real value (probabilities and values are >= 0)


class BadCursor(ValueError):
    """The pagination cursor is not one this API issued for this ordering."""


class StoreMissing(FileNotFoundError):
    """No prospect list has been written yet."""


class StoreUnreadable(RuntimeError):
    """The prospect store exists but cannot be read; `why` says what is wrong with it, without its path."""

    def __init__(self, why: str):
        super().__init__(f"the prospect list cannot be read ({why}); run `crm-score score` to write it again")
        self.why = why


def default_db_path() -> Path:
    """prospects.db in the embedded store's folder (`training.registry.models_dir()`), as the API reads it."""
    from training.registry import models_dir

    return models_dir() / PROSPECTS_FILE


def write_prospects(scores: pd.DataFrame, db_path: str | os.PathLike | None = None) -> Path:
    """Replace the prospect store with the open leads of a `crm-score score` frame; returns the store's path.

    `scores` has the columns of `training.scoring.score_customers`; rows without a conversion probability
    (customers who already bought, won or lost leads) are not prospects and are left out.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = scores[scores["conversion_probability"].notna()].rename(columns={"conversion_model_kind": "model_kind"})
    frame = pd.DataFrame({c: rows[c] if c in rows.columns else None for c in COLUMNS if c != "stalled"})
    stall = pd.to_numeric(frame["stall_ratio"], errors="coerce")
    frame["stalled"] = (stall >= STALLED_RATIO).astype(int)
    frame["ev_key"] = pd.to_numeric(frame["expected_value"], errors="coerce").fillna(_MISSING_KEY)
    frame["p_key"] = pd.to_numeric(frame["conversion_probability"], errors="coerce").fillna(_MISSING_KEY)
    names = [*COLUMNS, "ev_key", "p_key"]
    fd, tmp = tempfile.mkstemp(prefix=".prospects-", suffix=".db", dir=path.parent)
    os.close(fd)
    try:
        con = sqlite3.connect(tmp)
        try:
            # A private file renamed into place when complete: no journal needed for crash safety.
            con.execute("PRAGMA journal_mode = OFF")
            con.execute("PRAGMA synchronous = OFF")
            types = {c: _TYPES.get(c, "TEXT" if c in _TEXT else "REAL") for c in names}
            con.execute(f"CREATE TABLE prospects ({', '.join(f'{c} {t}' for c, t in types.items())})")
            con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            con.executemany(
                f"INSERT INTO prospects VALUES ({', '.join('?' * len(names))})",
                _records(frame[names]),
            )
            for key_name, key in ORDER_KEYS.items():
                con.execute(f"CREATE INDEX ix_{key_name} ON prospects ({key} DESC, customer_id)")
                for col in FILTER_COLUMNS:
                    con.execute(f"CREATE INDEX ix_{col}_{key_name} ON prospects ({col}, {key} DESC, customer_id)")
            # Covering for the few-rows path of `min_score`: candidates are sorted without reading their rows.
            con.execute("CREATE INDEX ix_min_score ON prospects (conversion_score, ev_key, customer_id)")
            meta = {"scored_at": datetime.now(UTC).isoformat(timespec="seconds"), "rows": str(len(frame))}
            if frame.empty:
                meta["note"] = empty_reason(scores)
            con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            con.execute("ANALYZE")
            con.commit()
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def empty_reason(scores: pd.DataFrame) -> str:
    """Why a `crm-score score` frame holds no prospect: no conversion model scored it, or no open lead."""
    models, as_of = scores.attrs.get("models"), scores.attrs.get("as_of")
    if models is not None and "conversion" not in models:
        return (
            "no prospect: the conversion model was not loaded when the list was written (no crm_conversion "
            "champion); train one, then run `crm-score score` again"
        )
    when = f" at {as_of}" if as_of else ""
    return f"no prospect: no open lead (not won, not lost, no order) was created before the cutoff{when}"


def _records(frame: pd.DataFrame) -> Iterator[tuple]:
    """Rows as tuples of plain Python values, None for missing."""
    columns = []
    for name in frame.columns:
        col = frame[name]
        if name in ("conversion_score", "value_decile", "stalled"):
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            columns.append([None if math.isnan(v) else int(v) for v in values])
        elif name in _TEXT or name == "customer_id":
            columns.append([None if pd.isna(v) else str(v) for v in col.to_numpy(dtype=object)])
        else:
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            columns.append([None if math.isnan(v) else float(v) for v in values])
    return zip(*columns, strict=True)


@dataclass(frozen=True)
class ProspectQuery:
    """Filters, ranking and page of one prospect list request."""

    order: str = "expected_value"  # or "probability"
    tier: str | None = None
    min_score: int | None = None
    source_channel: str | None = None
    current_stage: str | None = None
    industry: str | None = None
    region: str | None = None
    stalled: bool | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(order: str, key: float, customer_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([order, key, customer_id])).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> tuple[float, str]:
    """The (ranking key, customer_id) after which the next page starts."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_order, key, cid = orjson.loads(raw)
        if got_order != order or not isinstance(cid, str) or isinstance(key, bool):
            raise ValueError
        return float(key), cid
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadCursor("cursor is not valid for this ordering; start again without it") from exc


def connect(db_path: str | os.PathLike) -> sqlite3.Connection:
    """A read-only connection to the store; `StoreMissing` when none has been written, `StoreUnreadable` when
    the file is not a whole SQLite database."""
    path = Path(db_path)
    if not path.is_file():
        raise StoreMissing("no prospect list has been written yet: run `crm-score score` first")
    _check_file(path)
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    con.row_factory = sqlite3.Row
    return con


def _check_file(path: Path) -> None:
    """Refuse a file that is not a whole SQLite database before SQLite reads it: a cut one answers the pages it
    still has and fails on the others. `write_prospects` writes without a journal, so the header's page count
    is the file's size (SQLite's file format, "The Database Header")."""
    try:
        with path.open("rb") as f:
            head = f.read(100)
        size = path.stat().st_size
    except OSError as exc:
        raise StoreUnreadable(type(exc).__name__) from exc
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise StoreUnreadable("not an SQLite database")
    page_size = int.from_bytes(head[16:18], "big")
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and size < pages * (65536 if page_size == 1 else page_size):
        raise StoreUnreadable("the file is cut short")


def query_prospects(db_path: str | os.PathLike, q: ProspectQuery) -> dict:
    """One page of the ranked list: {items, next_cursor, scored_at, note (why no item)}; ties by `customer_id`."""
    if q.cursor:
        decode_cursor(q.cursor, q.order)  # a bad cursor is the caller's error, whether or not a store exists
    con = connect(db_path)
    try:
        sql, args = page_sql(con, q)
        rows = con.execute(sql, args).fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:  # damaged pages, a missing table or column
        raise StoreUnreadable(str(exc)) from exc
    finally:
        con.close()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    items = []
    for row in rows:
        item = {c: row[c] for c in COLUMNS}
        item["stalled"] = bool(item["stalled"])
        item["top_reasons"] = json.loads(item["top_reasons"]) if item["top_reasons"] else {}
        items.append(item)
    last = rows[-1] if rows else None
    cursor = encode_cursor(q.order, last["rank_key"], last["customer_id"]) if more and last else None
    note = None if items else _empty_note(meta, q)
    return {"items": items, "next_cursor": cursor, "scored_at": meta.get("scored_at"), "note": note}


def _empty_note(meta: dict, q: ProspectQuery) -> str:
    """Why a page has no item: the list is empty (and why, as written), or the filters or cursor leave none."""
    if meta.get("rows") == "0":
        return meta.get("note") or "no prospect: the list is empty (written by a version that did not say why)"
    return "no prospect after this cursor" if q.cursor else "no prospect matches these filters"


def _select(con: sqlite3.Connection) -> str:
    """The select list of `COLUMNS`; a column a store written by an earlier version lacks reads as NULL."""
    have = {row[1] for row in con.execute("PRAGMA table_info(prospects)").fetchall()}
    return ", ".join(c if c in have or c not in LATER_COLUMNS else f"NULL AS {c}" for c in COLUMNS)


def store_state(db_path: str | os.PathLike) -> str:
    """What `/ready` says of the store: "ok", "not written yet" or "unreadable: why" (`UNREADABLE`).

    Cheap enough for every probe: the file's header, the meta table and one row of every column.
    """
    try:
        con = connect(db_path)
    except StoreMissing:
        return "not written yet"
    except StoreUnreadable as exc:
        return f"{UNREADABLE}: {exc.why}"
    try:
        con.execute("SELECT key, value FROM meta").fetchall()
        con.execute(f"SELECT {_select(con)}, ev_key, p_key FROM prospects LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"{UNREADABLE}: {exc}"
    finally:
        con.close()
    return "ok"


def page_sql(con: sqlite3.Connection, q: ProspectQuery) -> tuple[str, list]:
    """The SELECT of one page (one row more than the page, to know whether another follows) and its arguments."""
    key = ORDER_KEYS[q.order]
    where, args = [], []
    for col, value in (
        ("conversion_tier", q.tier),
        ("source_channel", q.source_channel),
        ("current_stage", q.current_stage),
        ("industry", q.industry),
        ("region", q.region),
    ):
        if value is not None:
            where.append(f"{col} = ?")
            args.append(value)
    if q.stalled is not None:
        where.append("stalled = ?")
        args.append(int(q.stalled))
    if q.min_score is not None:
        where.append("conversion_score >= ?")
        args.append(int(q.min_score))
    if q.cursor:
        after_key, after_id = decode_cursor(q.cursor, q.order)
        where.append(f"{key} <= ? AND ({key} < ? OR customer_id > ?)")
        args += [after_key, after_key, after_id]
    select = f"SELECT {_select(con)}, {key} AS rank_key FROM prospects"
    order = f" ORDER BY {key} DESC, customer_id"
    if q.min_score is not None and q.order == "expected_value" and _few_with_score(con, q.min_score):
        # Few rows reach the score: rank them through the (covering) score index and read only the page's
        # rows, rather than walk the ranking index past every lower-scored row.
        page = f"SELECT customer_id FROM prospects INDEXED BY ix_min_score WHERE {' AND '.join(where)}{order} LIMIT ?"
        return f"{select} WHERE customer_id IN ({page}){order}", [*args, q.limit + 1]
    sql = select + (" WHERE " + " AND ".join(where) if where else "") + order + " LIMIT ?"
    return sql, [*args, q.limit + 1]


def _few_with_score(con: sqlite3.Connection, min_score: int, few: int = 20_000) -> bool:
    """Whether at most `few` prospects have `conversion_score >= min_score` (a bounded index count)."""
    sql = "SELECT count(*) FROM (SELECT 1 FROM prospects WHERE conversion_score >= ? LIMIT ?)"
    return con.execute(sql, (min_score, few + 1)).fetchone()[0] <= few


def to_csv(items: list[dict]) -> str:
    """A page of prospects as CSV (reasons as one JSON cell)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow([_cell(json.dumps(item[c]) if c == "top_reasons" else item[c]) for c in COLUMNS])
    return buf.getvalue()


def _cell(value):
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
