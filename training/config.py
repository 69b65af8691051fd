"""Training configuration in one typed place; `--config FILE` (TOML or JSON) overrides the defaults."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from crmdata.funnel import DEFAULT_FUNNEL, Funnel

MODEL_KINDS = ("conversion", "churn", "clv")
REGISTERED_NAMES = {"conversion": "crm_conversion", "churn": "crm_churn", "clv": "crm_clv"}
EXPERIMENT = "crm-scoring"


@dataclass(frozen=True)
class LightGBMParams:
    """Fixed-seed, conservative LightGBM settings; `num_threads` stays 1 on shared 2-core machines."""

    learning_rate: float = 0.04
    num_leaves: int = 31
    min_data_in_leaf: int = 80
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 5.0
    max_rounds: int = 1500
    early_stopping_rounds: int = 80
    num_threads: int = 1
    seed: int = 42


@dataclass(frozen=True)
class TrainConfig:
    """Horizons, snapshots and model settings of one training run."""

    conversion_horizon_days: int = 90
    churn_horizon_days: int = 90
    clv_horizon_days: int = 365
    snapshots: int = 12  # churn's training cutoffs, monthly (as many as the history allows, up to this)
    conversion_snapshots: int = 18  # conversion's: leads move fast, and older cohorts still teach the funnel
    snapshot_step_days: int = 30
    clv_snapshots: int = 24  # CLV's training cutoffs (windows cut at its validation cutoff), monthly
    # Positive examples (converted, churned, or CLV customers with later orders) in the training and in the
    # validation snapshots: from `min_positives` the full LightGBM model is trained; from `fallback_min_positives`
    # up to it, the small regularised fallback model (`training.fitting.fallback_params`); below, none.
    min_positives: int = 50
    fallback_min_positives: int = 10
    min_history_days: int = 60
    funnel: Funnel = DEFAULT_FUNNEL  # the file's `stages` (in order, won last) and `lost_stage`
    lightgbm: LightGBMParams = field(default_factory=LightGBMParams)
    conversion_tiers: tuple[float, float, float] = (0.1, 0.3, 0.6)  # top shares of leads in tiers A, A+B, A+B+C
    churn_risk_thresholds: tuple[float, float] = (0.4, 0.7)  # medium from, high from
    # Models refitted on training + holdout rows once the holdout has chosen their rounds (and been scored):
    # CLV's year-long label windows leave it the fewest snapshots, and the holdout's are the newest. Churn is
    # not: its calibrator is fitted on the holdout, and the refit moves its margins away from that fit.
    refit_on_holdout: tuple[str, ...] = ("conversion", "clv")

    def snapshot_count(self, kind: str) -> int:
        return {"conversion": self.conversion_snapshots, "churn": self.snapshots, "clv": self.clv_snapshots}[kind]

    def horizon(self, kind: str) -> int:
        return {
            "conversion": self.conversion_horizon_days,
            "churn": self.churn_horizon_days,
            "clv": self.clv_horizon_days,
        }[kind]

    def to_dict(self) -> dict:
        return {**asdict(self), "funnel": self.funnel.to_dict()}


def load_config(path: Path | None = None, **overrides) -> TrainConfig:
    """Defaults, then the file's settings (TOML or JSON, `[lightgbm]` table allowed), then non-None overrides."""
    values: dict = {}
    if path is not None:
        text = Path(path).read_text()
        values = json.loads(text) if Path(path).suffix == ".json" else tomllib.loads(text)
    known = ({f.name for f in fields(TrainConfig)} - {"funnel"}) | {"stages", "lost_stage"}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    lgb_values = values.pop("lightgbm", {})
    lgb_known = {f.name for f in fields(LightGBMParams)}
    if set(lgb_values) - lgb_known:
        raise ValueError(f"{path}: unknown lightgbm setting(s) {sorted(set(lgb_values) - lgb_known)}")
    if "stages" in values or "lost_stage" in values:
        stages = values.pop("stages", DEFAULT_FUNNEL.stages)
        values["funnel"] = Funnel.of(stages, values.pop("lost_stage", None))
    for key in ("conversion_tiers", "churn_risk_thresholds", "refit_on_holdout"):
        if key in values:
            values[key] = tuple(values[key])
    odd = set(values.get("refit_on_holdout", ())) - set(MODEL_KINDS)
    if odd:
        raise ValueError(f"{path}: refit_on_holdout names unknown model(s) {sorted(odd)}; known: {list(MODEL_KINDS)}")
    config = TrainConfig(**values, lightgbm=LightGBMParams(**lgb_values))
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
