"""`profiles.<name>.budgets`: time budgets, minutes a day of some categories.

`{name: games, categories: [games], per_day: 60m, days: [mon-fri]}`: once the profile has used
the budget's categories for `per_day` on one of `days` (in its time zone), they are blocked
until midnight. How a minute is counted is the policy's (policy/budgets.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from filterdns.config.fragments import Schema, closed, list_of, ref, string
from filterdns.config.readers import ConfigReader
from filterdns.config.schedules import read_days
from filterdns.config.walker import Node, is_mapping, is_null, line_of, show

BUDGET_KEYS = ("name", "categories", "per_day", "days")
MAX_PER_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """One time budget: `per_day` seconds of `categories` on `days` (0 = Monday)."""

    name: str
    categories: tuple[str, ...]
    per_day: float  # seconds
    days: frozenset[int] = frozenset(range(7))
    path: str = ""  # "profiles.minh.budgets[0]"
    line: int | None = None

    def label(self) -> str:
        """ "budget games (profiles.minh.budgets[0], line 12)"."""
        where = self.path + (f", line {self.line}" if self.line is not None else "")
        return f"budget {self.name}" + (f" ({where})" if where else "")


def read_budgets(r: ConfigReader, node: Node, path: str) -> tuple[BudgetConfig, ...] | None:
    """A list of budgets; `[]` is none. Names are unique within the profile."""
    entries = r.items(node, path, "budgets")
    if entries is None:
        return None
    found = [_budget(r, child, child_path) for child, child_path in entries]
    seen: set[str] = set()
    for budget, (child, child_path) in zip(found, entries, strict=True):
        if budget is None:
            continue
        if budget.name in seen:
            r.problem(child, child_path, f"{show(budget.name)} is a second budget of that name")
            return None
        seen.add(budget.name)
    return tuple(b for b in found if b is not None) if None not in found else None


def _budget(r: ConfigReader, node: Node, path: str) -> BudgetConfig | None:
    before = len(r.problems)
    if is_null(node) or not is_mapping(node):
        r.problem(node, path, "expected a budget like {name: games, categories: [games], "
                  "per_day: 60m}")  # fmt: skip
        return None
    found = r.section(node, path, BUDGET_KEYS)
    for key, example in (("name", "games"), ("categories", "[games]"), ("per_day", "60m")):
        if key not in found:
            r.problem(node, path, f"needs {key}, e.g. {key}: {example}")
    name = r.field(found, path, "name", r.text, "").strip()
    none: tuple[str, ...] = ()
    categories = r.field(found, path, "categories", r.category_list, none)
    per_day = r.field(found, path, "per_day", r.positive, 0.0)
    days = r.field(found, path, "days", functools.partial(read_days, r), frozenset(range(7)))
    if per_day > MAX_PER_DAY:
        r.problem(found["per_day"], path + ".per_day", "is more than a day (at most 24h)")
    if "categories" in found and not categories and len(r.problems) == before:
        r.problem(found["categories"], path + ".categories", "needs at least one category")
    if len(r.problems) > before or not days:
        return None
    return BudgetConfig(name, tuple(categories), per_day, days, path, line_of(node))


def budget_definition() -> Schema:
    """The schema of one budget."""
    return closed(
        "A time budget: minutes a day of some categories",
        {
            "name": string("The budget's name, unique in the profile", minLength=1),
            "categories": list_of(ref("category"), "The categories it meters"),
            "per_day": ref("duration"),
            "days": list_of(string("A day or range: mon, mon-fri, daily"), "Days it applies"),
        },
        BUDGET_KEYS,
    )
