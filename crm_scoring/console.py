"""What every `crm-score` command prints on failure: one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 1) -> None:
    """Print an error to stderr and exit non-zero."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def guarded(job):
    """Run `job`; a store that cannot be reached or used, or a model file that cannot be read, is one line and
    exit 1. No low-level error reaches the CLI framework as `EOFError`, which it would print as `Aborted.`."""
    from training.artifact import ModelLoadError, OutdatedModelFormat
    from training.preflight import StoreMoved, TrackingUnreachable

    try:
        return job()
    except (TrackingUnreachable, StoreMoved, ModelLoadError, OutdatedModelFormat) as exc:
        fail(str(exc))
    except EOFError as exc:
        fail(f"a file ended too soon: {str(exc) or 'EOFError'}")
