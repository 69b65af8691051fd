"""The pyfunc model as code, for MLflow's models from code: `training.pyfunc.log_bundle` logs this file.

MLflow runs it when it loads the model (never imported by the project); the bundle itself comes from the
model's `bundle` artifact in `BundleModel.load_context`.
"""

from mlflow.models import set_model

from training.pyfunc import BundleModel

set_model(BundleModel())
