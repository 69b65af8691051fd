"""Command-line options shared by the `crm-score` commands in several modules (typer `Annotated` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[Path, typer.Option("--data", help="Input directory: one NAME.parquet or NAME.csv per table.")]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Cutoff (exclusive), ISO date; default: the day after the data ends.")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML or JSON training settings.")]
