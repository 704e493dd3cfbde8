"""How sure the search is that its first section is the right one: a calibrated probability.

A raw score does not say how likely a section is to be right: an alert with a long description
explains less of itself than one with a name alone, and a best score of 0.4 means little when the
runner-up scores 0.39. The confidence is a logistic model of three things the ranking knows:

- the best score (how much of what the alert says the section explains),
- its margin over the runner-up,
- how closely the section's heading is the alert's name (search.py's heading match),

fitted by maximum likelihood on the tuning part of the runbook corpus
(`tests/fixtures/runbooks/corpus/`, `make eval-runbooks`), where "right" means the first section is
the one a responder should get, and every alert that has no section counts as wrong. So the figure
reads as a probability: of the tuning alerts searched with confidence near 0.8, about 80 % got the
right section. The evaluation prints the calibration by decile for both parts of the corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfidenceModel:
    """P(first section is right) = σ(intercept + Σ weight·feature), features in the order of
    `library.confidence_features`: score, margin, heading match, name coverage, heading coverage."""

    intercept: float
    weights: tuple[float, ...]

    def probability(self, *features: float) -> float:
        z = self.intercept + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Fitted by `make eval-runbooks` on the tuning part of the corpus; the evaluation prints the
# coefficients it finds, to be copied here when the search changes.
MODEL = ConfidenceModel(intercept=-4.0, weights=(6.0, 6.0, 3.0, 0.0, 0.0))

# A section is attached to a page when its confidence reaches this; below it, the page lists the
# best candidates as "possible runbook sections" instead. Chosen on the tuning part so that no
# alert without a section gets one, with room to spare.
ATTACH_CONFIDENCE = 0.5
