"""Fit a model bundle on training rows: LightGBM parameters, early stopping on the holdout, calibration.

Classifiers are one binary booster with a Platt calibrator fitted on the holdout (churn also carries its
calibration across seasons); CLV is two log-link boosters, orders (Poisson) times value per order (gamma).
A refit reuses the rounds, encoder and calibrator of a fit that chose them on the holdout.
The fallback model (too few positives for the full one, see `training.dataset.check_positives`) is the same
bundle with small, heavily regularised boosters (`fallback_params`), so serving, reasons and artifacts are alike;
its Platt fit is shrunk toward the booster's own probabilities (`fallback_calibrator`), its holdout being small.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.bundle import Calibrator, CategoryEncoder, ModelBundle, SeasonTransfer
from training.catalogue import monotone_constraints, season_blind
from training.config import TrainConfig
from training.dataset import Snapshot
from training.features import FeatureSpec
from training.seasonality import window_means


def lightgbm_params(kind: str, config: TrainConfig, spec: FeatureSpec) -> dict:
    """LightGBM parameters: binary for the classifiers; for CLV, Poisson for its order count (log link)."""
    p = config.lightgbm
    params = {
        "objective": "poisson" if kind == "clv" else "binary",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": p.bagging_freq,
        "lambda_l2": p.lambda_l2,
        "num_threads": p.num_threads,
        "seed": p.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
        "cat_smooth": 20,
        "min_data_per_group": 50,
    }
    # Season-blind columns and monotone directions are declared per feature in `training.catalogue`: the churn
    # booster may not split on the season when the data has one (it enters through the bundle's SeasonTransfer),
    # and a longer silence never raises a purchase forecast.
    blind = season_blind(kind) if spec.purchase_season else ()
    if any(c in blind for c in spec.columns):
        params["feature_contri"] = [0.0 if c in blind else 1.0 for c in spec.columns]
    constraints = monotone_constraints(kind, spec.columns)
    if any(constraints):
        params["monotone_constraints"] = constraints
        params["monotone_constraints_method"] = "advanced"
    return params


# The fallback's boosters: depth-2 trees of 3 leaves, slow learning, strong L2, leaves of at least 2% of the
# training rows (and never fewer than the full model's), categories smoothed hard; its rounds are chosen on the
# holdout as the full model's are, up to FALLBACK_MAX_ROUNDS.
FALLBACK_TREE = {"num_leaves": 3, "max_depth": 2, "learning_rate": 0.03, "lambda_l2": 30.0, "cat_smooth": 50}
FALLBACK_LEAF_SHARE = 0.02
FALLBACK_MAX_ROUNDS = 400


def fallback_params(kind: str, config: TrainConfig, spec: FeatureSpec, rows: int) -> dict:
    """The fallback model's parameters for `rows` training rows: the full model's, made small and regularised."""
    params = lightgbm_params(kind, config, spec)
    leaf = max(config.lightgbm.min_data_in_leaf, int(FALLBACK_LEAF_SHARE * rows))
    return {**params, **FALLBACK_TREE, "min_data_in_leaf": leaf, "min_data_per_group": leaf}


# The weight, in pseudo-positives, of the fallback calibrator's prior that the booster's own probabilities hold.
FALLBACK_CALIBRATION_PRIOR = 100.0


def fallback_calibrator(margin: np.ndarray, y: np.ndarray, prior: float = FALLBACK_CALIBRATION_PRIOR) -> Calibrator:
    """Platt scaling shrunk toward the identity (slope 1, intercept 0 on the raw booster's margin).

    It maximises the log-likelihood minus prior/2 * ((slope - 1)^2 + intercept^2): the intercept's information is
    about the holdout's positives (sum of p(1-p)), so the prior counts as `prior` positives and its weight fades as
    the holdout's grow. A Platt fit on a dozen holdout positives follows their noise and that one window's rate.
    """
    slope, intercept = 1.0, 0.0
    for _ in range(100):  # Newton's method on a strictly concave objective
        p = 1.0 / (1.0 + np.exp(-(slope * margin + intercept)))
        residual, weight = y - p, p * (1.0 - p)
        gradient = np.array([residual @ margin - prior * (slope - 1.0), residual.sum() - prior * intercept])
        cross = weight @ margin
        hessian = np.array([[weight @ (margin * margin) + prior, cross], [cross, weight.sum() + prior]])
        step = np.linalg.solve(hessian, gradient)
        slope, intercept = slope + float(step[0]), intercept + float(step[1])
        if np.abs(step).max() < 1e-10:
            break
    calibrator = Calibrator()
    calibrator.slope_, calibrator.intercept_ = slope, intercept
    return calibrator


def is_fallback(params: dict) -> bool:
    """Whether booster parameters are the fallback's."""
    return params.get("max_depth") == FALLBACK_TREE["max_depth"] and params["num_leaves"] == FALLBACK_TREE["num_leaves"]


def model_params(kind: str, config: TrainConfig, spec: FeatureSpec, fallback_rows: int | None = None) -> dict:
    """The booster parameters of the full model, or of the fallback when `fallback_rows` (its row scale) is given."""
    if fallback_rows is None:
        return lightgbm_params(kind, config, spec)
    return fallback_params(kind, config, spec, fallback_rows)


def value_params(config: TrainConfig, spec: FeatureSpec, fallback_rows: int | None = None) -> dict:
    """CLV's order-value booster: gamma regression (log link, the mean of a skewed positive amount)."""
    params = model_params("clv", config, spec, fallback_rows)
    params.pop("monotone_constraints", None)
    params.pop("monotone_constraints_method", None)
    return {**params, "objective": "gamma"}


def season_transfer(spec: FeatureSpec, horizon: int, validation: pd.Timestamp) -> SeasonTransfer | None:
    """Churn's move from the validation window's season to any cutoff's (None without a purchase season)."""
    columns = list(spec.columns)
    if not spec.purchase_season or not {"cutoff_season_sin", "cutoff_season_cos"} <= set(columns):
        return None
    means = window_means(tuple(spec.purchase_season), horizon)
    return SeasonTransfer(
        window_season=means,
        reference=means[validation.dayofyear - 1],
        sin_column=columns.index("cutoff_season_sin"),
        cos_column=columns.index("cutoff_season_cos"),
    )


def _train_booster(params, x, y, valid, config: TrainConfig, spec: FeatureSpec, rounds=None, weight=None, offset=None):
    """One booster: early stopping on `valid` (x, y, weight, offset), or exactly `rounds` rounds without it.

    A fallback's parameters (its small trees) stop by FALLBACK_MAX_ROUNDS.
    """
    categorical = [i for i, c in enumerate(spec.columns) if c in set(spec.categorical)]
    data = lgb.Dataset(
        x,
        y,
        weight=weight,
        init_score=offset,
        feature_name=list(spec.columns),
        categorical_feature=categorical,
        free_raw_data=False,
    )
    if rounds is not None:
        return lgb.train(params, data, num_boost_round=max(rounds, 1))
    x_v, y_v, w_v, o_v = valid
    return lgb.train(
        params,
        data,
        num_boost_round=FALLBACK_MAX_ROUNDS if is_fallback(params) else config.lightgbm.max_rounds,
        valid_sets=[lgb.Dataset(x_v, y_v, weight=w_v, init_score=o_v, reference=data)],
        callbacks=[lgb.early_stopping(config.lightgbm.early_stopping_rounds, verbose=False)],
    )


def _order_values(snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CLV's value rows: (mask of rows with orders in their window, net value per order, orders).

    A value at or below zero (every order refunded) is floored just above it, as gamma regression needs;
    the gamma mean is the weighted mean of the targets, so the floor does not bias it.
    """
    counts = snap.counts.to_numpy(dtype=float)
    has = counts > 0
    per_order = snap.labels.to_numpy(dtype=float)[has] / counts[has]
    floor = 1e-3 * max(float(np.median(per_order)) if len(per_order) else 1.0, 1e-9)
    return has, np.maximum(np.nan_to_num(per_order), floor), counts[has]


def fit_bundle(
    kind: str,
    train: Snapshot,
    valid: Snapshot,
    spec: FeatureSpec,
    config: TrainConfig,
    refit: ModelBundle | None = None,
    fallback_rows: int | None = None,
) -> ModelBundle:
    """Fit with early stopping on the validation snapshot, then calibrate on it (classifiers).

    With `refit` (a bundle fitted that way), fit again on `train` alone for the rounds `refit` chose and keep
    its encoder and calibrator: how a model that has chosen its size on a holdout is refitted on all rows.
    With `fallback_rows`, the boosters are the fallback's (`fallback_params`), regularised for that many rows.
    """
    encoder = refit.encoder if refit else CategoryEncoder(spec.categorical).fit(train.features)
    layout = ModelBundle(kind=kind, spec=spec, encoder=encoder, booster=None)  # type: ignore[arg-type]  # matrices only
    x = (layout.matrix(train.features), layout.matrix(valid.features))
    fit = _fit_clv if kind == "clv" else _fit_classifier
    fitted = fit(kind, x, train, valid, spec, config, refit, fallback_rows)
    return ModelBundle(kind=kind, spec=spec, encoder=encoder, **fitted)


def _fit_classifier(kind, x, train: Snapshot, valid: Snapshot, spec, config: TrainConfig, refit, fallback_rows) -> dict:
    """A classifier's booster, with the calibrator (and, for churn, the season transfer) fitted on the holdout."""
    x_train, x_valid = x
    y_train, y_valid = train.labels.to_numpy(dtype=float), valid.labels.to_numpy(dtype=float)
    rounds = refit.booster.current_iteration() if refit else None
    params = model_params(kind, config, spec, fallback_rows)
    booster = _train_booster(params, x_train, y_train, (x_valid, y_valid, None, None), config, spec, rounds)
    if refit:
        return {"booster": booster, "calibrator": refit.calibrator, "season_transfer": refit.season_transfer}
    margin = booster.predict(x_valid, raw_score=True, num_threads=config.lightgbm.num_threads)
    transfer = season_transfer(spec, config.horizon(kind), valid.cutoffs.iloc[0]) if kind == "churn" else None
    calibrator = Calibrator().fit(margin, y_valid) if fallback_rows is None else fallback_calibrator(margin, y_valid)
    return {"booster": booster, "calibrator": calibrator, "season_transfer": transfer}


def _fit_clv(kind, x, train: Snapshot, valid: Snapshot, spec, config: TrainConfig, refit, fallback_rows) -> dict:
    """CLV's two boosters: expected orders and expected value per order, both with a log link.

    CLV = expected orders x expected value per order, so reasons add up. Orders are Poisson with the log of
    each window's observed share as offset: a window cut short by the cutoff still counts, at its exposure,
    and the booster predicts the whole horizon.
    """
    x_train, x_valid = x
    valid_counts = (x_valid, valid.counts.to_numpy(dtype=float), None, np.log(valid.exposure.to_numpy()))
    booster = _train_booster(
        model_params(kind, config, spec, fallback_rows),
        x_train,
        train.counts.to_numpy(dtype=float),
        valid_counts,
        config,
        spec,
        refit.booster.current_iteration() if refit else None,
        offset=np.log(train.exposure.to_numpy()),
    )
    has_t, value_t, weight_t = _order_values(train)
    has_v, value_v, weight_v = _order_values(valid)
    value_booster = _train_booster(
        value_params(config, spec, fallback_rows),
        x_train[has_t],
        value_t,
        (x_valid[has_v], value_v, weight_v, None),
        config,
        spec,
        refit.value_booster.current_iteration() if refit else None,
        weight=weight_t,
    )
    return {"booster": booster, "value_booster": value_booster}
