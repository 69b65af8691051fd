"""Serving settings in one typed place, read from the environment (prefix `CRM_SCORING_`).

Nothing is read at import time: call `get_settings()` (`create_app` does so once); a bad value is an
`InvalidSettings` of one line naming the variable and what it expects, never the value (it may hold keys).
Limits and storage paths live here and nowhere else; routes read them through `serving.deps.SettingsDep`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

log = logging.getLogger(__name__)

SCOPES = ("read", "admin")
PROSPECTS_FILE = "prospects.db"
# Largest CSV page of the prospect list: fixed, as it bounds the `limit` query parameter in the OpenAPI schema.
CSV_PAGE_MAX = 100_000
ENV_PREFIX = "CRM_SCORING_"


class InvalidSettings(ValueError):
    """A `CRM_SCORING_*` variable holds a value the settings refuse; the message names it, not its value."""


class Settings(BaseSettings):
    """What the API reads from `CRM_SCORING_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Comma-separated `key:scope` pairs, scopes `read` or `admin` (admin implies read): "k1:read,k2:admin".
    api_keys: str = Field(default="", repr=False)
    # Switch authentication off, for a local demo only; the app logs a warning at start-up.
    auth_disabled: bool = False
    # The embedded registry's folder, also read by `training.registry`; default the checkout's models/.
    models_dir: Path | None = None
    # The SQLite prospect store written by `crm-score score`; default prospects.db in the models folder.
    prospects_db: Path | None = None
    # The CRM export the channel routes read (performance, budget advice); unset, those routes answer 404.
    data_dir: Path | None = None
    # Leads or customers per scoring request: the one batch limit (the request schemas set none).
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    # Per lead and per history list (touchpoints, funnel events, orders): the one history limit.
    max_history_events: int = Field(default=2000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_page_size: int = Field(default=1000, ge=1)
    top_reasons: int = Field(default=3, ge=0, le=10)
    # Scoring requests with at most this many records run inline on the event loop (a single lead takes a
    # few milliseconds), larger ones in the threadpool so that they do not hold up other requests; 0: always
    # the threadpool. For single leads the two measure about the same (`benchmarks/bench_serving.py`).
    inline_max: int = Field(default=8, ge=0, le=10_000)
    # Distinct `as_of` cutoffs per scoring request: each one is a feature build of its own (about 14 ms), so
    # a batch of 1,000 different cutoffs would hold a worker for seconds.
    max_cutoffs: int = Field(default=32, ge=1, le=10_000)
    # Requests per second and per API key (a token bucket in memory, per process), and the burst a key may
    # spend at once; 0 switches the limit off. The default is above what one process serves (a few hundred to
    # 1,500 single leads a second on 2 cores), so it stops a runaway client, not a busy one.
    rate_limit_per_second: float = Field(default=1000.0, ge=0, le=1e6, allow_inf_nan=False)
    rate_limit_burst: int = Field(default=2000, ge=1, le=10_000_000)
    # Start-up loads the champions in the background (the API answers meanwhile, `/ready` 503) and tries again
    # while the set is not ready: this many attempts in all, the first wait this many seconds, doubled each time.
    model_load_attempts: int = Field(default=5, ge=1, le=100)
    model_load_backoff_s: float = Field(default=2.0, ge=0, le=600)
    # MLflow's own retries and timeout (seconds) of each registry request, unless MLFLOW_HTTP_REQUEST_MAX_RETRIES
    # or MLFLOW_HTTP_REQUEST_TIMEOUT is set: its defaults (7 retries with backoff, 120 s) hold one load for
    # minutes when the tracking server is down. Applied by `serving.api.serve`.
    registry_http_retries: int = Field(default=1, ge=0, le=10)
    registry_http_timeout_s: int = Field(default=10, ge=1, le=600)
    # Champions from more than one training (a training killed while moving the aliases, or aliases set by hand)
    # are served and flagged (`/ready`, `/v1/models`, the log); True refuses such a set: the model routes answer
    # 503 naming it, and a reload keeps a consistent set, until `crm-score champions repair` and a reload.
    refuse_mixed_champions: bool = False

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: str) -> str:
        parse_keys(value)  # raise on a malformed pair at start-up, not on the first request
        return value

    def keys(self) -> dict[str, str]:
        """API key -> scope."""
        return parse_keys(self.api_keys)

    def models_path(self) -> Path:
        """The embedded registry's folder: `models_dir`, else `training.registry.models_dir()`'s default."""
        from training.registry import models_dir

        return self.models_dir.resolve() if self.models_dir is not None else models_dir()

    def mlflow_http_env(self) -> dict[str, str]:
        """MLflow's HTTP request settings (environment variables it reads on each request) from these settings."""
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.registry_http_retries),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.registry_http_timeout_s),
        }

    def prospects_path(self) -> Path:
        """The prospect store the API reads: `prospects_db`, else prospects.db in the models folder."""
        return self.prospects_db or self.models_path() / PROSPECTS_FILE


def parse_keys(text: str) -> dict[str, str]:
    """Parse `k1:read,k2:admin` into {key: scope}; the message of an error never contains a key."""
    keys: dict[str, str] = {}
    for n, pair in enumerate(p.strip() for p in text.split(",")):
        if not pair:
            continue
        key, sep, scope = pair.rpartition(":")
        if not sep or not key or scope not in SCOPES:
            raise ValueError(f"pair {n + 1} must be KEY:SCOPE with scope one of {', '.join(SCOPES)}")
        keys[key] = scope
    return keys


def get_settings() -> Settings:
    """Read the settings from the environment now; raises `InvalidSettings` (one line, no values) on a bad one."""
    try:
        return Settings()
    except ValidationError as exc:
        message = "; ".join(_describe(error) for error in exc.errors(include_input=False, include_url=False))
    except SourceError as exc:  # a value the environment source itself cannot decode; its text names no value
        message = str(exc).splitlines()[0]
    raise InvalidSettings(f"invalid setting: {message}") from None


def _describe(error: dict) -> str:
    """`CRM_SCORING_NAME: what it expects` for one pydantic error, without the input."""
    name = ENV_PREFIX + "_".join(str(part) for part in error.get("loc", ())).upper()
    expected = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{name}: {expected}"
