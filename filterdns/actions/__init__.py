"""What a parent or a teacher can do, one implementation for every front door.

The command line (`cli/`) and the web app call the same functions with the same arguments:
`by` is who made the change (the invoking user, or the web account) and `via` the door ("cli",
"web" or "api"). They take no argparse namespace, print nothing and raise `ActionError` with a
one-line message for bad input; every change is a row of the `grants` table (the source of
truth) and leaves a row in the `changes` table (querylog/changes.py).

- `when`: when a change ends (`ends_for`: a duration, an HH:MM today, or until tomorrow morning).
- `grants`: `pause`, `resume`, `allow_domains`, `allow_category`, `block_all`, `top_up`,
  `revoke`, `active`.
- `budgets`: each time budget's minutes used and left today (`budgets`, `BudgetRow`).
- `requests`: a child's request to unblock a name approved (a domain grant) or declined
  (`decide_request`).
- `status`: each profile's state now, for a parent's home screen (`status`, `ProfileStatus`).
"""

from __future__ import annotations

from filterdns.actions.budgets import BudgetRow, budgets
from filterdns.actions.common import VIAS, ActionError, categories, check_profiles
from filterdns.actions.grants import (
    active,
    allow_category,
    allow_domains,
    block_all,
    pause,
    resume,
    revoke,
    top_up,
)
from filterdns.actions.requests import decide_request
from filterdns.actions.status import STATES, ProfileStatus, policy_for, status
from filterdns.actions.when import MORNING, ends_for, seconds_of

__all__ = [
    "MORNING",
    "STATES",
    "VIAS",
    "ActionError",
    "BudgetRow",
    "ProfileStatus",
    "active",
    "allow_category",
    "allow_domains",
    "block_all",
    "budgets",
    "categories",
    "check_profiles",
    "decide_request",
    "ends_for",
    "pause",
    "policy_for",
    "resume",
    "revoke",
    "seconds_of",
    "status",
    "top_up",
]
