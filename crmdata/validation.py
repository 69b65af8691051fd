"""Validate a whole export directory without raising: every problem plus a summary of what the data holds.

The summary gives per table its file, row count and time range, the channels and the funnel stages seen;
`format_summary` renders it for people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crmdata.funnel import DEFAULT_FUNNEL, Funnel
from crmdata.reading import TableRead, read_all
from crmdata.rules import Problem, is_blank
from crmdata.schema import CHANNEL_COLUMNS, TABLES, TIME_COLUMN


@dataclass
class ValidationReport:
    """The outcome of validating a directory: every problem plus a summary of what the data holds."""

    problems: list[Problem] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the directory meets the contract."""
        return not self.problems


def _iso(stamp: pd.Timestamp) -> str | None:
    """A timestamp as ISO 8601 text, None for NaT."""
    return None if pd.isna(stamp) else stamp.isoformat()


def _table_summary(read: TableRead) -> dict:
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


def _distinct(reads: dict[str, TableRead], where: Iterable[tuple[str, str]]) -> set[str]:
    """Distinct non-blank values of the given (table, column) pairs."""
    seen: set[str] = set()
    for name, column in where:
        frame = reads[name].frame
        if frame is not None and column in frame.columns:
            values = frame[column]
            seen.update(values[~is_blank(values)].unique().tolist())
    return seen


def _summary(reads: dict[str, TableRead], funnel: Funnel) -> dict:
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
    reads, problems = read_all(Path(data_dir), None, funnel, list(TABLES))
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
