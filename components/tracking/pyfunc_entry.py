"""Models-from-code entry for the registered detector: MLflow executes this file at load time.

Kept separate from ``pyfunc_model.py`` so importing that module never calls ``set_model``.
"""
from mlflow.models import set_model

from components.tracking.pyfunc_model import DetectorPyFunc

set_model(DetectorPyFunc())
