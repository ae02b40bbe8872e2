"""Evaluation in one call: the papers' and the NTIRE challenge's metrics (``docs/metrics.md``).

Example (``model`` an :class:`~srflow.models.srflow.SRFlow`, ``hr_dir`` a folder of images)::

    from srflow.evaluation import EvalConfig, evaluate, load_eval_images
    result = evaluate(model, load_eval_images(hr_dir, scale=4, crop=256), EvalConfig())
"""

from srflow.evaluation.config import EvalConfig, MetricConventions, MetricFiles
from srflow.evaluation.images import EvalImage, EvalInputError, load_eval_images
from srflow.evaluation.results import EvalResult, MethodResult
from srflow.evaluation.runner import evaluate

__all__ = [
    "EvalConfig",
    "EvalImage",
    "EvalInputError",
    "EvalResult",
    "MethodResult",
    "MetricConventions",
    "MetricFiles",
    "evaluate",
    "load_eval_images",
]
