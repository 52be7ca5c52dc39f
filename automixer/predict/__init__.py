"""Predictors from mixture weights to a metric, as scikit-learn estimators, and their selection by CV."""

from automixer.predict.models import GPPredictor, LinearPredictor, LogLinearPredictor
from automixer.predict.select import PREDICTORS, cv_spearman, select_predictor

__all__ = [
    "PREDICTORS",
    "GPPredictor",
    "LinearPredictor",
    "LogLinearPredictor",
    "cv_spearman",
    "select_predictor",
]
