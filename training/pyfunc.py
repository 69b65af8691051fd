"""The MLflow pyfunc wrapper of a model bundle, so MLflow's own tools (load_model, models serve) score it.

The model is logged as code (MLflow's models from code, `training/pyfunc_model.py`) with the bundle's native
files as its artifact: nothing of the project is pickled, so a registered model survives moved modules.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from training.artifact import BUNDLE_DIR, load_bundle_dir, save_bundle

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


class BundleModel(mlflow.pyfunc.PythonModel):
    """Scores a frame of feature rows (the bundle's feature columns) with the packaged bundle."""

    def load_context(self, context) -> None:
        self.bundle = load_bundle_dir(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        missing = [c for c in self.bundle.spec.columns if c not in model_input.columns]
        if missing:
            raise ValueError(f"input is missing feature column(s) {missing[:10]}")
        value = self.bundle.predict(model_input)
        column = "expected_clv" if self.bundle.kind == "clv" else f"{self.bundle.kind}_probability"
        return pd.DataFrame({column: np.asarray(value, dtype=float)})


def signature_for(bundle):
    """Input schema from the feature spec (numeric doubles, optional string categoricals) and the output."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    categorical = set(bundle.spec.categorical)
    inputs = Schema(
        [
            ColSpec("string" if c in categorical else "double", c, required=c not in categorical)
            for c in bundle.spec.columns
        ]
    )
    column = "expected_clv" if bundle.kind == "clv" else f"{bundle.kind}_probability"
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", column)]))


def log_bundle(bundle, path_dir, registered_name: str | None, input_example: pd.DataFrame):
    """Log the bundle as a pyfunc model (with signature and input example) and optionally register it."""
    import crmdata
    import training

    bundle_dir = save_bundle(bundle, Path(path_dir) / BUNDLE_DIR)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={"bundle": str(bundle_dir)},
        code_paths=[str(Path(package.__file__).parent) for package in (training, crmdata)],
        signature=signature_for(bundle),
        input_example=input_example,
        registered_model_name=registered_name,
        pip_requirements=_requirements(),
    )


def _requirements() -> list[str]:
    """Pinned runtime requirements of the pyfunc, from the versions installed now."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "scipy")]
