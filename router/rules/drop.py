"""Whether a reload may replace the rules in force: a reload that drops most of them is refused.

An empty or half-written rules file still loads (every alert then falls to its severity label or
`default_severity`), so a slip of the editor or the deployment would quietly demote every page. A
reload that leaves no rule, or fewer than half of the rules in force, is refused unless the
operator allows it (`ROUTER_ALLOW_RULE_DROP`).
"""

from __future__ import annotations

from router.rules.model import RuleSet

ALLOW_SETTING = "ROUTER_ALLOW_RULE_DROP"


def rule_drop_refusal(in_force: RuleSet, new: RuleSet) -> str | None:
    """Why `new` may not replace `in_force`, or None when it may."""
    before, after = len(in_force.rules), len(new.rules)
    if after >= before or (after > 0 and after * 2 >= before):
        return None
    what = "no rule" if after == 0 else f"{after} of the {before} rules in force"
    return (
        f"the new rules would leave {what} ({before - after} dropped, more than half); "
        f"fix the rules files, or set {ALLOW_SETTING}=true and reload to allow it"
    )
