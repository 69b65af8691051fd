"""A trained model as one bundle: feature spec, category encoder, booster(s), calibrator, metadata.

Serving and MLflow's pyfunc both load this bundle (saved as native files, see `training.artifact`); it predicts
from a feature frame on numpy arrays.
A CLV bundle holds two boosters with a log link, how many orders (Poisson) and what each is worth
(gamma), and predicts their product: on the log scale a sum of their margins, so reasons add up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.features import FeatureBlocks, FeatureSpec, feature_labels
from training.metadata import ModelMetadata


class CategoryEncoder:
    """Map categorical feature strings to the integer codes seen in training; unseen or missing -> NaN."""

    def __init__(self, columns: tuple[str, ...], max_categories: int = 50):
        self.columns = columns
        self.max_categories = max_categories

    def fit(self, frame: pd.DataFrame) -> CategoryEncoder:
        """Learn each column's categories, most frequent first, at most `max_categories`."""
        self.categories_ = {
            col: tuple(str(v) for v in frame[col].dropna().value_counts().index[: self.max_categories])
            for col in self.columns
        }
        return self

    def transform_column(self, col: str, values) -> np.ndarray:
        """Codes of one column as float (NaN where unseen or missing)."""
        codes = pd.Categorical(values, categories=self.categories_[col]).codes.astype(float)
        codes[codes < 0] = np.nan
        return codes

    def to_dict(self) -> dict[str, Any]:
        """Arguments and learnt categories, JSON-ready."""
        categories = {col: list(values) for col, values in self.categories_.items()}
        return {"columns": list(self.columns), "max_categories": self.max_categories, "categories_": categories}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryEncoder:
        """The fitted encoder stored by `to_dict`."""
        encoder = cls(tuple(data["columns"]), max_categories=data["max_categories"])
        encoder.categories_ = {col: tuple(values) for col, values in data["categories_"].items()}
        return encoder


class Calibrator:
    """Platt scaling of a booster's raw margin, fitted on held-out (later) snapshots; keeps the ranking.

    `C` is scikit-learn's inverse regularisation strength: large, so the fit is (almost) plain maximum likelihood.
    """

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Calibrator:
        """Learn `slope_` and `intercept_` of the logistic map from margin to probability."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C).fit(margin.reshape(-1, 1), y)
        self.slope_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope_ * margin + self.intercept_)))

    def to_dict(self) -> dict[str, Any]:
        """Argument and learnt coefficients, JSON-ready."""
        return {"C": self.C, "slope_": self.slope_, "intercept_": self.intercept_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """The fitted calibrator stored by `to_dict`."""
        calibrator = cls(C=data["C"])
        calibrator.slope_, calibrator.intercept_ = float(data["slope_"]), float(data["intercept_"])
        return calibrator


@dataclass(frozen=True)
class SeasonTransfer:
    """Carries a churn probability calibrated in the validation window's purchase season to another season.

    No order in a window has probability exp(-expected orders), and expected orders scale with the window's
    season, so a probability p calibrated in a window of season S_ref becomes p ** (S / S_ref) in a window of
    season S; a certain churner (a dead account, p = 1) stays certain. The cutoff's day of year is read back
    from the `cutoff_season_sin`/`_cos` columns; `window_season[d]` is the mean season of the label window
    from day of year d.
    """

    window_season: tuple[float, ...]
    reference: float
    sin_column: int
    cos_column: int

    def ratio(self, x: np.ndarray) -> np.ndarray:
        """S / S_ref for each row (1 where the cutoff's season is unknown)."""
        angle = np.arctan2(x[:, self.sin_column], x[:, self.cos_column]) % (2 * np.pi)
        known = np.isfinite(angle)
        day = np.round(np.where(known, angle, 0.0) * 365.25 / (2 * np.pi)).astype(int) % len(self.window_season)
        return np.where(known, self._season[day] / self.reference, 1.0)

    @functools.cached_property
    def _season(self) -> np.ndarray:
        """`window_season` as an array, built once per loaded bundle rather than on every prediction."""
        return np.asarray(self.window_season, dtype=float)

    def apply(self, p: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.power(p, self.ratio(x))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "window_season": list(self.window_season),
            "reference": self.reference,
            "sin_column": self.sin_column,
            "cos_column": self.cos_column,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeasonTransfer:
        """The transfer stored by `to_dict`."""
        return cls(
            window_season=tuple(data["window_season"]),
            reference=float(data["reference"]),
            sin_column=int(data["sin_column"]),
            cos_column=int(data["cos_column"]),
        )


@dataclass
class ModelBundle:
    """Everything needed to score one target from a feature frame."""

    kind: str  # conversion | churn | clv
    spec: FeatureSpec
    encoder: CategoryEncoder
    booster: lgb.Booster
    calibrator: Calibrator | None = None
    metadata: ModelMetadata | None = None  # set once the model is trained and evaluated
    value_booster: lgb.Booster | None = None  # CLV: net value per order (gamma, log link)
    season_transfer: SeasonTransfer | None = None  # churn: from the validation window's season to the cutoff's

    @property
    def feature_names(self) -> list[str]:
        return list(self.spec.columns)

    def _layout(self) -> dict:
        """Column positions and category code maps, built once per loaded bundle (not saved)."""
        cached = self.__dict__.get("_layout_cache")
        if cached is None:
            columns = list(self.spec.columns)
            categorical = set(self.spec.categorical)
            numeric = [c for c in columns if c not in categorical]
            cached = {
                "numeric": numeric,
                "numeric_index": pd.Index(numeric),
                "numeric_pos": np.array([j for j, c in enumerate(columns) if c not in categorical], dtype=np.intp),
                "categorical": [
                    (j, c, {v: float(i) for i, v in enumerate(self.encoder.categories_[c])})
                    for j, c in enumerate(columns)
                    if c in categorical
                ],
                "labels": feature_labels(self.spec),
            }
            self.__dict__["_layout_cache"] = cached
        return cached

    def warm(self) -> None:
        """Build the column layout ahead of the first prediction."""
        self._layout()

    def matrix(self, features: pd.DataFrame | FeatureBlocks) -> np.ndarray:
        """The model's float matrix: numeric columns as they are, categoricals as codes (unseen -> NaN).

        Built without a pandas call per column: on the API's one-row path that is most of the cost.
        """
        lay = self._layout()
        if isinstance(features, FeatureBlocks):
            return self._matrix_of_blocks(features, lay)
        out = np.empty((len(features), len(self.spec.columns)), dtype=np.float64)
        numeric = lay["numeric"]
        k = len(numeric)
        # build_features puts the numeric columns first, as one float64 block: slice it rather than select.
        if features.columns[:k].equals(lay["numeric_index"]):
            block = features.iloc[:, :k]
        else:  # frames from elsewhere (a pyfunc caller): any column order, numbers possibly as text
            block = features[numeric].apply(pd.to_numeric, errors="coerce")
        out[:, lay["numeric_pos"]] = block.to_numpy(dtype=np.float64, na_value=np.nan)
        for j, col, codes in lay["categorical"]:
            out[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in features[col].to_numpy()]
        return out

    def _matrix_of_blocks(self, blocks: FeatureBlocks, lay: dict) -> np.ndarray:
        """The matrix of `build_feature_blocks` rows (numeric columns in spec order, then the categoricals)."""
        if not blocks.numeric_columns.equals(lay["numeric_index"]):
            raise ValueError("feature blocks built with another feature spec")
        out = np.empty((len(blocks.numeric), len(self.spec.columns)), dtype=np.float64)
        out[:, lay["numeric_pos"]] = blocks.numeric
        for i, (j, _, codes) in enumerate(lay["categorical"]):
            out[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in blocks.categorical[:, i]]
        return out

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability (classifiers) or expected value (CLV) for each row of `x`."""
        if self.calibrator is not None:
            p = self.calibrator.transform(self.booster.predict(x, raw_score=True, num_threads=1))
            return p if self.season_transfer is None else self.season_transfer.apply(p, x)
        if self.value_booster is not None:
            return self.expected_orders(x) * self.expected_order_value(x)
        return self.booster.predict(x, num_threads=1)

    def expected_orders(self, x: np.ndarray) -> np.ndarray:
        """CLV: expected orders in the horizon."""
        return self.booster.predict(x, num_threads=1)

    def expected_order_value(self, x: np.ndarray) -> np.ndarray:
        """CLV: expected net value of one of those orders."""
        return self.value_booster.predict(x, num_threads=1)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.matrix(features))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature SHAP contributions on the raw (log-odds or log) scale, without the bias column.

        For CLV, the sum of both boosters' contributions: each adds to the log of its factor. For churn, the
        season transfer's shift of the log-odds is the contribution of `season_next_90d` (the booster does
        not split on the season, see `training.catalogue.season_blind`).
        """
        full = self.booster.predict(x, pred_contrib=True, num_threads=1)
        contrib = full[:, :-1]
        if self.value_booster is not None:
            contrib = contrib + self.value_booster.predict(x, pred_contrib=True, num_threads=1)[:, :-1]
        if self.season_transfer is not None and "season_next_90d" in self.spec.columns:
            p = self.calibrator.transform(full.sum(axis=1))  # the contributions and bias add up to the margin
            moved = self.season_transfer.apply(p, x)
            with np.errstate(divide="ignore"):
                shift = _logit(moved) - _logit(p)
            contrib[:, self.spec.columns.index("season_next_90d")] += np.nan_to_num(shift, posinf=0.0, neginf=0.0)
        return contrib

    def model_strings(self) -> tuple[str, ...]:
        """Every booster as text, to compare two fits exactly."""
        return tuple(b.model_to_string() for b in (self.booster, self.value_booster) if b is not None)

    def reasons(
        self, features: pd.DataFrame | FeatureBlocks, x: np.ndarray | None = None, top: int = 3
    ) -> list[list[dict]]:
        """The `top` strongest positive and negative contributions per row, in plain words."""
        x = self.matrix(features) if x is None else x
        lay = self._layout()
        contrib = self.contributions(x)
        columns = self.spec.columns
        if isinstance(features, FeatureBlocks):
            raw = {j: features.categorical[:, i] for i, (j, _, _) in enumerate(lay["categorical"])}
        else:
            raw = {j: features[c].to_numpy() for j, c, _ in lay["categorical"]}
        orders = np.argsort(-np.abs(contrib), axis=1)  # row by row, as np.argsort of each row
        out = []
        for i in range(len(x)):
            row = contrib[i].tolist()
            pos: list[int] = []
            neg: list[int] = []
            for j in orders[i].tolist():  # by |contribution|, largest first: stop at the first zero
                c = row[j]
                if c > 0 and len(pos) < top:
                    pos.append(j)
                elif c < 0 and len(neg) < top:
                    neg.append(j)
                if c == 0 or (len(pos) >= top and len(neg) >= top):
                    break
            chosen = sorted(pos + neg, key=lambda j: -abs(row[j]))
            out.append([_reason(columns[j], raw[j][i] if j in raw else x[i, j], row[j], lay["labels"]) for j in chosen])
        return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _reason(column: str, value, contribution: float, labels: dict[str, str]) -> dict:
    """One explanation: the feature, its value, its signed contribution and a sentence."""
    template = labels.get(column, column.replace("_", " ") + ": {value}")
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    try:
        text = f"{column.replace('_', ' ')} unknown" if missing else template.format(value=value)
    except (ValueError, TypeError):
        text = f"{column.replace('_', ' ')}: {value}"
    shown = None if missing else (value if isinstance(value, str) else float(value))
    return {"feature": column, "value": shown, "contribution": round(float(contribution), 4), "text": text}
