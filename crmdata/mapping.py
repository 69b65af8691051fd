"""The import mapping (TOML): which export file feeds each contract table, and how its columns become the contract's.

Per output table, one source or a list of sources (`[[funnel_events]]`), each with:

- `file`: the export file (CSV) in the `--from` directory;
- `columns`: export column -> contract column (only mapped columns are kept);
- `values`: per contract column, export value -> contract value (`"*"` catches every other value);
- `unmapped`: what happens to a value no map names: `"refuse"` (the default: an error naming the file, column
  and spreadsheet rows) or `"keep"` (kept as exported);
- `dates`: per contract column, a strptime format (`"%m/%d/%Y %I:%M %p"`); columns not named are ISO 8601;
- `where`: export column -> the values a row must hold to be kept (e.g. only closed-won deals become orders);
- `lookup`: customer_id found through another export file (`column` of this file matched to `key` there, `id`
  taken from there), e.g. Salesforce opportunities -> the lead they were converted from;
- `wide`: one funnel event per non-empty stage-date cell (`columns`: export date column -> stage);
- `long`: one funnel event per row of a stage-history table, repeated stages of one customer dropped.

Errors name the mapping key as `mapping.funnel_events.wide.columns."Became a Lead Date"`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmdata.schema import TABLES

ANY_VALUE = "*"


class MappingError(ValueError):
    """The mapping or the export it is applied to is wrong; str() lists every finding, one per line."""

    def __init__(self, issues: list[str]) -> None:
        self.issues = list(issues)
        count = len(self.issues)
        header = f"the import mapping cannot be applied ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([header, *(f"  {issue}" for issue in self.issues)]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lookup(_Strict):
    """customer_id taken from another export file: this file's `column` matched to `key` there, giving `id`."""

    file: str
    column: str
    key: str
    id: str
    unmatched: Literal["refuse", "drop"] = "refuse"


class Wide(_Strict):
    """Stage-date columns (one per stage) -> one funnel event per non-empty cell."""

    id: str | None = None  # the export's customer id column (not needed with a lookup)
    columns: dict[str, str] = Field(min_length=1)  # export date column -> stage
    format: str | None = None  # strptime format of every stage-date column; ISO 8601 when absent


class Long(_Strict):
    """A stage-history table (one row per stage change) -> funnel events, repeats of the same stage dropped."""

    id: str | None = None
    stage: str
    timestamp: str
    format: str | None = None


class Source(_Strict):
    """One export file feeding one contract table."""

    file: str
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    unmapped: Literal["refuse", "keep"] = "refuse"
    dates: dict[str, str] = {}
    where: dict[str, list[str]] = {}
    lookup: Lookup | None = None
    wide: Wide | None = None
    long: Long | None = None


class Mapping(_Strict):
    """Sources per contract table; customers is required, as in the contract."""

    customers: Source | list[Source]
    touchpoints: Source | list[Source] | None = None
    funnel_events: Source | list[Source] | None = None
    orders: Source | list[Source] | None = None
    channel_spend: Source | list[Source] | None = None

    def sources(self) -> list[tuple[str, str, Source]]:
        """(table, mapping key prefix, source) for every source, in contract order."""
        out = []
        for table in TABLES:
            given = getattr(self, table)
            if isinstance(given, Source):
                out.append((table, f"mapping.{table}", given))
            elif given is not None:
                out += [(table, f"mapping.{table}[{i}]", source) for i, source in enumerate(given)]
        return out


def key(*parts: str | int) -> str:
    """A mapping key as a user finds it in the TOML: bare names dotted, other names quoted, indices bracketed."""
    text = "mapping"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}"
        else:
            text += '."' + part.replace('"', '\\"') + '"'
    return text


def _branch_mismatch(error: dict) -> bool:
    """Whether a finding only says the value is not the other branch of `Source | list[Source]`."""
    loc = error["loc"]
    return len(loc) == 2 and loc[1] in ("Source", "list[Source]") and error["type"] in ("list_type", "model_type")


def _described(error: dict) -> str:
    """One pydantic finding as `mapping.key: message`, without the union branches pydantic adds."""
    parts = [p for p in error["loc"] if p not in ("Source", "list[Source]", "function-after[...]")]
    parts = [p for p in parts if not (isinstance(p, str) and p.startswith(("list[", "function-")))]
    if error["type"] == "extra_forbidden":
        return f"{key(*parts)}: unknown key"
    if error["type"] == "missing":
        return f"{key(*parts)}: required key is missing"
    return f"{key(*parts)}: {error['msg']}"


def _semantic_issues(mapping: Mapping) -> list[str]:
    """What the types cannot see: contract columns that do not exist, reshapes outside funnel_events."""
    issues = []
    for table, prefix, source in mapping.sources():
        known = TABLES[table].columns
        for name, target in source.columns.items():
            if target not in known:
                issues.append(f'{prefix}.columns."{name}": {target!r} is not a column of {table} ({", ".join(known)})')
        for section in ("values", "dates"):
            for column in getattr(source, section):
                if column not in known:
                    issues.append(f"{prefix}.{section}.{column}: not a column of {table} ({', '.join(known)})")
        stamps = TABLES[table].timestamp_columns
        for column in source.dates:
            if column in known and column not in stamps:
                issues.append(f"{prefix}.dates.{column}: not a date column of {table} ({', '.join(stamps)})")
        for section in ("wide", "long"):
            if getattr(source, section) is not None and table != "funnel_events":
                issues.append(f"{prefix}.{section}: reshapes into funnel events only, not {table}")
        if source.wide is not None and source.long is not None:
            issues.append(f"{prefix}: one source is either wide or long, not both")
        if source.columns and (source.wide is not None or source.long is not None):
            issues.append(f"{prefix}.columns: a wide or long source takes its columns from its own section")
    return issues


def parse_mapping(text: str, origin: str = "mapping") -> Mapping:
    """A mapping from TOML text; a MappingError names every wrong key (`mapping.orders.colums: unknown key`)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([f"{origin}: not valid TOML: {exc}"]) from None
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # A union of one table or a list of tables reports the branch the user did not mean; keep the other.
        meant = [e for e in errors if not _branch_mismatch(e)] or errors
        raise MappingError(list(dict.fromkeys(_described(e) for e in meant))) from None
    issues = _semantic_issues(mapping)
    if issues:
        raise MappingError(issues)
    return mapping


def read_mapping(path: Path | str) -> Mapping:
    """The mapping in a TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError([f"{path}: cannot read the mapping ({exc.strerror or exc})"]) from None
    return parse_mapping(text, str(path))


BUILTIN_DIR = Path(__file__).resolve().parent / "mappings"


def builtin_mapping(name: str) -> Path:
    """The path of a mapping shipped with the package (`hubspot`, `salesforce`)."""
    path = BUILTIN_DIR / f"{name}.toml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise MappingError([f"no shipped mapping {name!r}; shipped: {shipped}"])
    return path
