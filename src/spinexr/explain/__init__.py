"""Explanations of classifier predictions behind one call shape.

``explain(classifier, image, method, target=None, **options) -> Heatmap`` with method one of
:data:`METHODS` (Grad-CAM, Integrated Gradients, gradient saliency, LIME); the heatmap is
float32 (H, W) in [0, 1] aligned to the source image. ``explain_ensemble`` combines the
members of a :class:`~spinexr.models.ensemble.TriageEnsemble` by their weights;
``explain_windows`` explains a window triage on its most suspicious vertebra windows. See
:mod:`spinexr.explain.base` for targets, model state, geometry and scaling.
"""
from spinexr.explain.base import (METHODS, content_box, explain, explain_ensemble,
                                  explain_windows)

__all__ = ["METHODS", "content_box", "explain", "explain_ensemble", "explain_windows"]
