"""The champion model set of a running API: load in the background at start-up, reload on demand, readiness.

Start-up loads in a thread (`ModelRuntime.start`), so the API answers at once, and loads again a bounded
number of times while the registry does not answer (it may come back; a broken artifact stays broken).
Reload builds a complete new `ModelSet` off to the side and swaps one reference, so requests in flight keep
the set they started with; a reload that loads less than what is serving keeps the old set and says why.
A model that cannot be loaded, whatever the error, leaves the API up with the reason in `missing`: a short
text naming the model, its version and the file, never an absolute path or an internal URL (the log has the
detail). The others keep serving: `/ready` is 200 while at least one model is loaded (`require=all` or a model
name asks for more), and only the routes of a missing model answer 503, with a plain reason.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crmdata.funnel import Funnel
from serving.metrics import Metrics
from training.artifact import BUNDLE_DIR, MANIFEST, ModelLoadError, OutdatedModelFormat
from training.bundle import ModelBundle
from training.config import MODEL_KINDS, REGISTERED_NAMES

log = logging.getLogger(__name__)
LOADING = "loading"
# What a response may not show of an error: URLs (a tracking server's, `sqlite:///...`), addresses, absolute paths.
_INTERNAL = re.compile(
    r"\b[a-zA-Z][\w+.-]*://[^\s'\"()]*|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|(?<![\w.:])/[^\s'\",()]+"
)


# An exception's class name in a reason ("MlflowException: ", "(LightGBMError: ..."): operators' detail, not a caller's.
_CLASS_NAME = re.compile(r"\b[A-Z]\w*(?:Exception|Error|Warning)\b:?\s*")


class ModelsUnavailable(RuntimeError):
    """A route needs a model that is not loaded; the message names it and why."""


@dataclass(frozen=True)
class ModelSet:
    """One consistent set of champion bundles (by kind), and why any kind is missing."""

    bundles: dict[str, ModelBundle]
    missing: dict[str, str] = field(default_factory=dict)
    transient: bool = False  # the registry did not answer: loading again may bring what is missing
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ready(self) -> bool:
        """Every champion loaded (`/ready?require=all`); `any_loaded` is what the default `/ready` asks."""
        return not self.missing and all(k in self.bundles for k in MODEL_KINDS)

    @property
    def any_loaded(self) -> bool:
        return bool(self.bundles)

    def versions(self) -> dict[str, str]:
        return {kind: str(b.metadata.version) for kind, b in self.bundles.items()}

    def versions_by_name(self) -> dict[str, str]:
        return {REGISTERED_NAMES[kind]: version for kind, version in self.versions().items()}

    def need(self, kind: str) -> ModelBundle:
        if kind not in self.bundles:
            name = REGISTERED_NAMES[kind]
            reason = self.missing.get(name, "unknown")
            raise ModelsUnavailable(
                f"model not loaded: {plain(reason if reason.startswith(name) else f'{name}@champion: {reason}')}"
            )
        return self.bundles[kind]

    def marks(self) -> dict[str, str | None]:
        """Each loaded champion's training (the run that put it in place), by registered name."""
        return {REGISTERED_NAMES[kind]: b.metadata.champion_set for kind, b in self.bundles.items()}

    @property
    def mixed(self) -> bool:
        """Whether the loaded champions come from more than one training (or carry no mark)."""
        from training.champion_set import mixed_marks

        return bool(self.bundles) and mixed_marks(self.marks())

    def funnel(self, kinds: tuple[str, ...]) -> Funnel | None:
        """The funnel the first loaded model of `kinds` was trained with (None when none is loaded)."""
        return next((self.bundles[k].spec.funnel for k in kinds if k in self.bundles), None)


def load_model_set() -> ModelSet:
    """Load the @champion of every model kind from the registry (MLFLOW_TRACKING_URI or the embedded store).

    Each model that fails, whatever the error, is left out with a public reason; a registry that does not answer
    is asked once, not once per model.
    """
    from training.registry import RegistryUnreachable, configure, load_bundle

    try:
        configure()
    except Exception as exc:
        log.warning("the model registry could not be opened: %s", exc)
        return ModelSet({}, dict.fromkeys(REGISTERED_NAMES.values(), public_reason(exc)), transient=True)
    bundles, missing = {}, {}
    for kind, name in ((k, REGISTERED_NAMES[k]) for k in MODEL_KINDS):
        try:
            bundles[kind] = usable(kind, load_bundle(name)[0])
        except RegistryUnreachable as exc:
            log.warning("%s", exc)
            for rest in (REGISTERED_NAMES[k] for k in MODEL_KINDS if k not in bundles):
                missing.setdefault(rest, f"{rest}@champion: the model registry did not answer")
            return ModelSet(bundles, missing, transient=True)
        except Exception as exc:
            expected = isinstance(exc, (ModelLoadError, OutdatedModelFormat))
            log.warning("model %s not loaded: %s", name, exc, exc_info=not expected)
            missing[name] = public_reason(exc, name)
    return ModelSet(bundles, missing)


def usable(kind: str, bundle: ModelBundle) -> ModelBundle:
    """`bundle`, checked to be a `kind` model whose column layout builds (built now, not on the first request)."""
    where = f"{REGISTERED_NAMES[kind]} version {bundle.metadata.version}"
    if bundle.kind != kind:
        raise ModelLoadError(f"{where}: a {bundle.kind} model, not a {kind} model ({BUNDLE_DIR}/{MANIFEST})")
    try:
        bundle.warm()
    except Exception as exc:
        raise ModelLoadError(
            f"{where}: {BUNDLE_DIR}/encoder.json does not fit {BUNDLE_DIR}/spec.json ({type(exc).__name__}: {exc})"
        ) from exc
    return bundle


def public_reason(exc: BaseException, name: str | None = None) -> str:
    """Why a model is not loaded, fit for a response: a loader's own message, else the error's type and text,
    without URLs, addresses or absolute paths."""
    text = str(exc) if isinstance(exc, (ModelLoadError, OutdatedModelFormat)) else f"{type(exc).__name__}: {exc}"
    if name and name not in text:
        text = f"{name}: {text}"
    return _INTERNAL.sub("<hidden>", text)[:300]


def plain(reason: str) -> str:
    """A reason without exception class names, for a caller of a scoring route (`missing` keeps them)."""
    return _CLASS_NAME.sub("", reason).strip() or "unknown"


@dataclass(frozen=True, kw_only=True)
class ReloadOutcome:
    """What a reload did: whether it swapped, the set serving now, and what failed to load."""

    swapped: bool
    models: ModelSet
    errors: dict[str, str]
    transient: bool = False  # the new set's failures may pass (the registry did not answer)


class ModelRuntime:
    """The current `ModelSet` of one app: `start` loads it in the background, `reload` on demand (blocking)."""

    def __init__(
        self,
        loader=load_model_set,
        metrics: Metrics | None = None,
        attempts: int = 1,
        backoff_s: float = 0,
        refuse_mixed: bool = False,
    ):
        self.current = ModelSet({}, dict.fromkeys(REGISTERED_NAMES.values(), f"still {LOADING}"))
        self._loader = loader
        self._metrics = metrics or Metrics()
        self._lock = threading.Lock()
        self._attempts, self._backoff_s = attempts, backoff_s
        self._refuse_mixed = refuse_mixed
        self._progress = LOADING
        self._loaded, self._stopping = threading.Event(), threading.Event()

    @property
    def ready(self) -> bool:
        return self.current.ready

    @property
    def state(self) -> str:
        """What `/ready` says of the models: ok, loading, retrying (attempt k of n), partial (some loaded) or
        unavailable (none loaded), and which are not loaded."""
        models = self.current
        if models.ready:
            return f"ok ({mixed_reason(models)})" if models.mixed else "ok"
        if not self._loaded.is_set():
            return self._progress
        absent = ", ".join(n for k, n in REGISTERED_NAMES.items() if k not in models.bundles) or "a model kind"
        return f"{'partial' if models.any_loaded else 'unavailable'}: {absent} not loaded"

    def model_states(self) -> dict[str, str]:
        """Each champion's state by registered name: "ok", loading or retrying, or "unavailable: " and why."""
        models, loading = self.current, not self._loaded.is_set()
        out = {}
        for kind, name in REGISTERED_NAMES.items():
            if kind in models.bundles:
                out[name] = "ok"
            elif loading:
                out[name] = self._progress
            else:
                out[name] = f"unavailable: {plain(models.missing.get(name, 'not loaded'))}"
        return out

    def start(self) -> None:
        """Load the champions in a background thread, retrying while the registry does not answer (a broken
        artifact stays broken): `attempts` in all, the waits `backoff_s`, then doubled each time."""
        threading.Thread(target=self._load_with_retries, name="model-loader", daemon=True).start()

    def stop(self) -> None:
        """Stop retrying (an attempt under way finishes)."""
        self._stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the start-up loading is over (loaded, or out of attempts); False on timeout."""
        return self._loaded.wait(timeout)

    def _load_with_retries(self) -> None:
        """Serve the first set loaded, whatever it holds; load again while its failures may pass."""
        try:
            for attempt in range(1, self._attempts + 1):
                if attempt > 1:
                    self._progress = f"retrying (attempt {attempt} of {self._attempts})"
                outcome = self._refresh(always=attempt == 1)
                last = attempt == self._attempts or self.current.ready
                if not outcome.transient or last or self._stopping.wait(self._backoff_s * 2 ** (attempt - 1)):
                    break
            if not self.current.ready:
                log.warning("serving without all models: %s", self.current.missing)
        finally:
            self._loaded.set()

    def reload(self) -> ReloadOutcome:
        """Load the champions again and swap them in, or keep the serving set when the new one is worse."""
        outcome = self._refresh()
        self._metrics.reloads.labels("ok" if outcome.swapped else "failed").inc()
        return outcome

    def _refresh(self, always: bool = False) -> ReloadOutcome:
        outcome = self._swap(always)
        if outcome.swapped:
            settle_heap()
        self._publish(outcome.models)
        return outcome

    def _swap(self, always: bool = False) -> ReloadOutcome:
        """Load a new set and serve it if `always`, if it is ready, or if it is no worse than a set not ready."""
        with self._lock:
            try:
                new = self._loader()
            except Exception as exc:  # a loader that fails outright: a reason, never an error of the API
                log.exception("loading the models failed")
                new = ModelSet({}, dict.fromkeys(REGISTERED_NAMES.values(), public_reason(exc)), transient=True)
            if new.mixed:
                new = refused(new) if self._refuse_mixed else flagged(new)
            old = self.current
            if always or new.ready or (not old.ready and len(new.bundles) >= len(old.bundles)):
                self.current = new  # one reference assignment: atomic for readers
                return ReloadOutcome(swapped=True, models=new, errors=new.missing, transient=new.transient)
            log.warning("model reload failed, keeping the loaded models: %s", new.missing)
            return ReloadOutcome(swapped=False, models=old, errors=new.missing, transient=new.transient)

    def _publish(self, models: ModelSet) -> None:
        versions = models.versions()
        self._metrics.set_versions({name: versions.get(kind) for kind, name in REGISTERED_NAMES.items()})


def mixed_reason(models: ModelSet) -> str:
    """One line naming each champion's version and training, for a set that is not one training's."""
    from training.champion_set import describe_mixed

    return describe_mixed(models.marks(), models.versions_by_name())


def refused(models: ModelSet) -> ModelSet:
    """A mixed set, not served: every model missing, with the set described and what to run."""
    why = (
        f"{mixed_reason(models)} (a training killed while moving the aliases, or aliases set by hand), refused "
        "by CRM_SCORING_REFUSE_MIXED_CHAMPIONS: run `crm-score champions repair` (`--as-is` to keep these "
        "versions), then reload"
    )
    log.warning("not serving the champions: %s", why)
    return ModelSet({}, {name: why for name in REGISTERED_NAMES.values()})


def flagged(models: ModelSet) -> ModelSet:
    """A mixed set, served: the log says so once per load (`/ready` and `/v1/models` say so on every call)."""
    log.warning("serving a %s (`crm-score champions show` and `champions repair`)", mixed_reason(models))
    return models


def settle_heap() -> None:
    """Take what is loaded now (libraries, models), which lives as long as the process or the model set, out of
    the cyclic collector's full passes: they otherwise pause a request for 100+ ms now and then (the p99).
    After a model reload, the previous set's frozen objects are released and collected first, and the freed
    memory handed back to the system (glibc keeps it otherwise, and the process grows a little at every reload)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (`malloc_trim`, glibc only; elsewhere nothing to do)."""
    import ctypes
    from contextlib import suppress

    with suppress(OSError, AttributeError):  # not glibc (musl, macOS): no malloc_trim, nothing to hand back
        ctypes.CDLL(None).malloc_trim(0)


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
        "champion_set": {"consistent": not models.mixed, "trainings": models.marks()},
        "loaded_at": models.loaded_at.isoformat(timespec="seconds"),
    }
