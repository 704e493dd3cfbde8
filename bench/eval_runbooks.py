"""Runbook matching on real runbooks of other organisations: top-1, false attachments, calibration.

Prints, for the tuning and the test part of the corpus (bench/runbook_corpus.py), per collection
and in all: how often the right section comes first, how often it is attached, how often the
page gives it at all (attached, or among the "possible runbook sections" of a page without one),
how many alerts get a wrong section attached, and how many alerts without a section get one;
then the calibration of the confidence by decile, and the confidence model refitted on the
tuning part (to copy into router/runbooks/confidence.py when the search changes). The recall
line says how often the right section is among the first k of the ranking: the most that any
reordering of the first k could put first, so a figure short of a target at depth 10 needs new
evidence, not new weights. "by name alone" searches every alert without its annotations, as a
rule that writes none sends it; the attach threshold must stay above the most confident alert
without a section either way. `-v` lists
every miss; `--part tuning` (or `--part test`) measures one part only, so that work on the search
can look at the tuning part alone.
"""

from __future__ import annotations

import sys

from bench.runbook_corpus import (
    RECALL_DEPTHS,
    calibration,
    evaluate,
    figures,
    fit_confidence,
    most_confident_false,
    recall,
    split,
)
from router.runbooks import ATTACH_CONFIDENCE


def _line(name: str, outcomes: list) -> str:  # type: ignore[type-arg]
    f = figures(outcomes)
    return (
        f"  {name:<22} {f.with_section:>4} {f.without_section:>4}   {f.top1:>6.1%}   "
        f"{f.attached_right:>6.1%}   {f.in_page:>6.1%}   {f.wrong_attachments:>5}   "
        f"{f.false_attachments:>5}"
    )


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    verbose = "-v" in args
    parts = split()
    if "--part" in args:
        wanted = args[args.index("--part") + 1]
        parts = {wanted: parts[wanted]}
    for part, collections in parts.items():
        outcomes = evaluate(collections)
        print(
            f"{part} part ({', '.join(collections)}), attach at confidence >= {ATTACH_CONFIDENCE}:"
        )
        print("  collection             with  none   top-1   attached  in page  wrong   false")
        for collection in collections:
            print(_line(collection, [o for o in outcomes if o.case.collection == collection]))
        print(_line("all", outcomes))
        terse = evaluate(collections, name_alone=True)
        print(_line("all, by name alone", terse))
        for variant, searched in (("as labelled", outcomes), ("by name alone", terse)):
            worst = most_confident_false(searched)
            if worst is not None:
                # The test part's alerts are not named: only its totals are looked at.
                which = f"{worst.case.id} {worst.case.alert.name} " if part == "tuning" else ""
                print(
                    f"  most confident alert without a section, {variant}: {which}"
                    f"at {worst.match.candidates[0].confidence:.3f}"
                )
        print(
            "  right section among the first k:  "
            + "  ".join(f"k={k} {recall(outcomes, k):.1%}" for k in RECALL_DEPTHS)
        )
        print("  calibration (first candidate's confidence vs share right):")
        for decile, count, predicted, measured in calibration(outcomes):
            print(
                f"    {decile}  {count:>4} alerts  "
                f"predicted {predicted:5.1%}  measured {measured:5.1%}"
            )
        if verbose:
            for o in outcomes:
                wrong_first = o.case.expected and not o.first_right
                wrong_attach = o.attached is not None and not o.attached_right
                if wrong_first or wrong_attach:
                    confidence = o.match.candidates[0].confidence if o.match.candidates else 0.0
                    print(
                        f"    MISS {o.case.id} {o.case.alert.name}: first {o.first} "
                        f"(conf {confidence:.2f}, features {o.features}) "
                        f"attached {o.attached}; want {sorted(o.case.expected) or 'none'}"
                    )
        if part == "tuning":
            weights = fit_confidence(outcomes)
            print(
                f"  confidence model refitted on this part: intercept={weights[0]:.2f}, "
                f"weights=({', '.join(f'{w:.2f}' for w in weights[1:])})"
            )


if __name__ == "__main__":
    main()
