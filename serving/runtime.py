"""The champion model set of a running API: load at start-up, reload on demand, readiness and status.

Reload builds a complete new `ModelSet` off to the side and swaps one reference, so requests in flight keep
the set they started with; a reload that loads less than what is serving keeps the old set and says why.
A model that cannot be loaded leaves the API up, not ready, with the reason in `missing`.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crmdata.funnel import Funnel
from serving.metrics import Metrics
from training.bundle import ModelBundle
from training.config import MODEL_KINDS, REGISTERED_NAMES

log = logging.getLogger(__name__)


class ModelsUnavailable(RuntimeError):
    """A route needs a model that is not loaded; the message names it and why."""


@dataclass(frozen=True)
class ModelSet:
    """One consistent set of champion bundles (by kind), and why any kind is missing."""

    bundles: dict[str, ModelBundle]
    missing: dict[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        for bundle in self.bundles.values():
            bundle.warm()  # build each bundle's column layout now, not on the first request

    @property
    def ready(self) -> bool:
        return not self.missing and all(k in self.bundles for k in MODEL_KINDS)

    def versions(self) -> dict[str, str]:
        return {kind: str(b.metadata.version) for kind, b in self.bundles.items()}

    def need(self, kind: str) -> ModelBundle:
        if kind not in self.bundles:
            name = REGISTERED_NAMES[kind]
            raise ModelsUnavailable(f"model {name}@champion is not loaded: {self.missing.get(name, 'unknown')}")
        return self.bundles[kind]

    def funnel(self, kinds: tuple[str, ...]) -> Funnel | None:
        """The funnel the first loaded model of `kinds` was trained with (None when none is loaded)."""
        return next((self.bundles[k].spec.funnel for k in kinds if k in self.bundles), None)


def load_model_set() -> ModelSet:
    """Load the @champion of every model kind from the registry (MLFLOW_TRACKING_URI or the embedded store)."""
    from training.registry import configure, load_champions

    try:
        configure()
        bundles, missing = load_champions()
    except Exception as exc:  # the registry itself is unreachable: nothing loaded, and say why
        return ModelSet({}, {name: f"{type(exc).__name__}: {str(exc)[:300]}" for name in REGISTERED_NAMES.values()})
    for name in (REGISTERED_NAMES[k] for k in MODEL_KINDS if k not in bundles):
        missing.setdefault(name, "not registered with alias champion")
    return ModelSet(bundles, missing)


@dataclass(frozen=True, kw_only=True)
class ReloadOutcome:
    """What a reload did: whether it swapped, the set serving now, and what failed to load."""

    swapped: bool
    models: ModelSet
    errors: dict[str, str]


class ModelRuntime:
    """The current `ModelSet` of one app; `load` at start-up and `reload` (both blocking: run off the loop)."""

    def __init__(self, loader=load_model_set, metrics: Metrics | None = None):
        self.current = ModelSet({}, {"models": "not loaded yet"})
        self._loader = loader
        self._metrics = metrics or Metrics()
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.current.ready

    def load(self) -> ModelSet:
        """Load the champions at start-up; a set with missing models still serves (not ready, with reasons)."""
        outcome = self._swap(always=True)
        settle_heap()
        self._publish(outcome.models)
        if not outcome.models.ready:
            log.warning("serving without all models: %s", outcome.models.missing)
        return outcome.models

    def reload(self) -> ReloadOutcome:
        """Load the champions again and swap them in, or keep the serving set when the new one is worse."""
        outcome = self._swap()
        if outcome.swapped:
            settle_heap()
        self._metrics.reloads.labels("ok" if outcome.swapped else "failed").inc()
        self._publish(outcome.models)
        return outcome

    def _swap(self, always: bool = False) -> ReloadOutcome:
        """Load a new set and serve it if `always`, if it is ready, or if it is no worse than a set not ready."""
        with self._lock:
            new = self._loader()
            old = self.current
            if always or new.ready or (not old.ready and len(new.bundles) >= len(old.bundles)):
                self.current = new  # one reference assignment: atomic for readers
                return ReloadOutcome(swapped=True, models=new, errors=new.missing)
            log.warning("model reload failed, keeping the loaded models: %s", new.missing)
            return ReloadOutcome(swapped=False, models=old, errors=new.missing)

    def _publish(self, models: ModelSet) -> None:
        versions = models.versions()
        self._metrics.set_versions({name: versions.get(kind) for kind, name in REGISTERED_NAMES.items()})


def settle_heap() -> None:
    """Take what is loaded now (libraries, models), which lives as long as the process or the model set, out of
    the cyclic collector's full passes: they otherwise pause a request for 100+ ms now and then (the p99).
    After a model reload, the previous set's frozen objects are released and collected first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def model_status(models: ModelSet) -> dict:
    """The body of `/v1/models`: each loaded champion's version, training window and holdout metrics."""
    items = []
    for kind, bundle in models.bundles.items():
        meta = bundle.metadata
        items.append(
            {
                "kind": kind,
                "name": REGISTERED_NAMES[kind],
                "version": str(meta.version),
                "alias": "champion",
                "trained_at": meta.trained_at,
                "data_window": list(meta.data_window),
                "validation_cutoff": meta.validation_cutoff,
                "horizon_days": meta.horizon_days,
                "holdout_metrics": meta.holdout_metrics,
            }
        )
    return {
        "ready": models.ready,
        "models": items,
        "missing": models.missing,
        "loaded_at": models.loaded_at.isoformat(timespec="seconds"),
    }
