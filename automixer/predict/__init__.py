"""Predictors from mixture weights to a metric, as scikit-learn estimators, and their selection by CV."""

from automixer.predict.composite import EnsemblePredictor, fit_estimator
from automixer.predict.models import (
    GPPredictor,
    LightGBMPredictor,
    LinearPredictor,
    LogLinearPredictor,
    MultiLogLinearPredictor,
)
from automixer.predict.select import (
    PREDICTORS,
    blend_weight,
    build_predictor,
    choose_candidate,
    cv_spearman,
    oof_predict,
    parse_candidate,
    select_predictor,
    target_components,
)

__all__ = [
    "PREDICTORS",
    "EnsemblePredictor",
    "GPPredictor",
    "LightGBMPredictor",
    "LinearPredictor",
    "LogLinearPredictor",
    "MultiLogLinearPredictor",
    "blend_weight",
    "build_predictor",
    "choose_candidate",
    "cv_spearman",
    "fit_estimator",
    "oof_predict",
    "parse_candidate",
    "select_predictor",
    "target_components",
]
