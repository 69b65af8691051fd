"""`crm-score import`: a CRM's export files (CSV) -> the contract's tables, through a TOML mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crm_scoring.console import fail


def import_export(
    from_dir: Annotated[Path, typer.Option("--from", help="Directory of the CRM's export files (CSV).")],
    mapping: Annotated[
        str,
        typer.Option(
            "--mapping",
            help="The mapping TOML file, or the name of a shipped one: hubspot, salesforce (copy and adapt them).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the contract tables into.")],
    fmt: Annotated[str, typer.Option("--format", help="File format of the tables: parquet or csv.")] = "parquet",
) -> None:
    """Import a CRM export through a mapping (renames, value maps, date formats, stage-date and stage-history
    reshapes); every problem is listed with its mapping key, file, column and spreadsheet rows. Check the result
    with `crm-score validate --data OUT`."""
    from crmdata.importing import import_dir
    from crmdata.mapping import MappingError, builtin_mapping, read_mapping
    from crmdata.schema import TABLES

    if fmt not in ("parquet", "csv"):
        fail(f"--format must be parquet or csv, got {fmt!r}", 2)
    if not from_dir.is_dir():
        fail(f"{from_dir}: not a directory", 2)
    stale = sorted(p.name for p in out.glob("*") if p.stem in TABLES and p.suffix in (".parquet", ".csv"))
    if stale:
        fail(f"{out} already holds {', '.join(stale)}: import into a new or empty directory", 2)
    try:
        path = Path(mapping) if mapping.endswith(".toml") or Path(mapping).exists() else builtin_mapping(mapping)
        rows = import_dir(from_dir, read_mapping(path), out, fmt)
    except MappingError as exc:
        for issue in exc.issues:
            typer.secho(issue, fg=typer.colors.RED, err=True)
        fail(f"{len(exc.issues)} problem(s) importing {from_dir} with {mapping}")
    typer.echo(f"imported {from_dir} into {out}: " + ", ".join(f"{name} {n:,}" for name, n in rows.items()))
    typer.echo(f"next: crm-score validate --data {out}")
