"""Checks a training makes before it fits anything: the tracking store answers, and each champion loads.

Fitting takes minutes; a tracking server that is down or a champion whose files are cut short should be found
in seconds, named, and (for the champion) handled, not met after the fitting as a long traceback.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from training.config import MODEL_KINDS, REGISTERED_NAMES

log = logging.getLogger(__name__)

# MLflow retries a failed request for minutes by default; the check asks once, briefly, unless the user chose.
CHECK_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class TrackingUnreachable(RuntimeError):
    """The tracking store does not answer: nothing can be logged or registered, so nothing is fitted."""


class StoreMoved(RuntimeError):
    """The embedded store was moved or copied: its records still point at the old folder's files."""


@dataclass(frozen=True, kw_only=True)
class BrokenChampion:
    """A registered champion that cannot be loaded: which model, which version, and why (naming the file)."""

    name: str
    version: str
    error: str

    def describe(self) -> str:
        return f"the champion of {self.name} (version {self.version}) could not be loaded: {self.error}"


def check_tracking(uri: str) -> None:
    """Ask the tracking store for one experiment, once and briefly; raise `TrackingUnreachable` if it fails."""
    from mlflow import MlflowClient

    try:
        with _bounded_requests():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:
        where = "tracking server" if uri.startswith(("http://", "https://")) else "tracking store"
        raise TrackingUnreachable(f"the {where} at {_without_credentials(uri)} is unreachable ({_cause(exc)})") from exc


def broken_champions(kinds=MODEL_KINDS) -> list[BrokenChampion]:
    """The champions of `kinds` that are registered but cannot be loaded (older format, files cut or missing)."""
    from training.artifact import ModelLoadError, OutdatedModelFormat
    from training.registry import CHAMPION, alias_version, load_bundle

    broken = []
    for kind in kinds:
        name = REGISTERED_NAMES[kind]
        current = alias_version(name, CHAMPION)
        if current is None:
            continue
        try:
            load_bundle(name, version=str(current.version))
        except (OutdatedModelFormat, ModelLoadError) as exc:
            broken.append(BrokenChampion(name=name, version=str(current.version), error=str(exc.__cause__ or exc)))
        except OSError as exc:  # the files are gone from where the registry says they are
            broken.append(BrokenChampion(name=name, version=str(current.version), error=_cause(exc)))
    return broken


def check_before_training(kinds=MODEL_KINDS) -> list[BrokenChampion]:
    """Reach the tracking store, refuse a moved embedded store, and list the champions that cannot be loaded.

    Raises `TrackingUnreachable` or `StoreMoved`; a broken champion is logged as a warning and returned: the
    training goes on and, under `--promote auto`, its new model replaces that champion.
    """
    from training.registry import configure, embedded_store_moved

    uri = configure()
    check_tracking(uri)
    moved = embedded_store_moved()
    if moved:
        raise StoreMoved(moved)
    broken = broken_champions(kinds)
    for champion in broken:
        log.warning("%s; the new model will replace it", champion.describe())
    return broken


@contextmanager
def _bounded_requests() -> Iterator[None]:
    """MLflow's HTTP retry and timeout settings of `CHECK_SETTINGS` for the block, where the user set none."""
    added = {k: v for k, v in CHECK_SETTINGS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _cause(exc: BaseException) -> str:
    """The telling part of an error: an OS error's words (`Connection refused`), else its first line, short."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]


def _without_credentials(uri: str) -> str:
    """The URI without a user name or password in it."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
