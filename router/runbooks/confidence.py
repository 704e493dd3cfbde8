"""How sure the search is that its first section is the right one: a calibrated probability.

A raw score does not say how likely a section is to be right: a best score of 0.6 means little
when the runner-up scores 0.59, and a near miss (`KubeAggregatedAPIDown` against the section
"KubeAPIDown") can score high. The confidence is a logistic model of what the ranking knows about
a hit (library.confidence_features):

- its margin over the runner-up (its whole score when nothing else matched),
- whether the section holds every term of the alert's name,
- how much of the section's heading, by IDF, the alert says,
- how nearly the heading is the alert's name (1.0: it is): the heading bonus is part of the
  margin, and a heading that shares only some of the name's words earns it for near misses too,
- whether the heading is the name of another alert (`KubeAPIDown` for `KubeAggregatedAPIDown`):
  on the tuning part, half of the first sections so titled were right,

fitted by maximum likelihood on the tuning part of the runbook corpus
(`tests/fixtures/runbooks/corpus/` and the shipped runbooks; `make eval-runbooks`), where "right"
means that the first section is the one a responder should get, and every alert that has no
section counts as wrong. So the figure reads as a probability: of the tuning alerts searched with
a confidence near 0.8, about 80 % got the right section first. The evaluation prints the
calibration by decile for both parts of the corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfidenceModel:
    """P(first section is right) = σ(intercept + Σ weight·feature), features in the order of
    `library.confidence_features`: margin, whole name held, heading coverage, heading match,
    heading names another alert."""

    intercept: float
    weights: tuple[float, ...]

    def probability(self, *features: float) -> float:
        z = self.intercept + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Fitted by `make eval-runbooks` on the tuning part of the corpus; the evaluation prints the
# coefficients it finds, to be copied here when the search changes.
MODEL = ConfidenceModel(intercept=-1.64, weights=(5.55, 0.87, 2.48, -1.85, -0.79))

# A section is attached to a page when its confidence reaches this; below it, the page lists the
# best candidates as "possible runbook sections" instead. Chosen on the tuning part: the lowest at
# which no alert without a section gets one, searched as labelled (the most confident: 0.928) and
# searched by its name alone, as a rule without annotations sends it (0.960: the near miss
# KubeAggregatedAPIDown against the section KubeAPIDown).
ATTACH_CONFIDENCE = 0.97
