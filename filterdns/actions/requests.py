"""A child's request to unblock a name, approved or declined: the same for the web page and the
API (and any later door). Approving is a domain grant for the request's profile, made first;
the request is then marked decided with that grant's id. When someone else decided it in
between, the grant is taken back and the loser is told, so one request never leaves two grants.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from filterdns.actions.common import ActionError, check_via, record
from filterdns.actions.grants import allow_domains, revoke
from filterdns.config import Config
from filterdns.policy.values import Grant
from filterdns.web.asks import AccessRequest, RequestError, RequestStore, State


def decide_request(
    config: Config,
    store: RequestStore,
    request_id: int,
    *,
    approve: bool,
    ends: Mapping[str, float] | None = None,
    reason: str = "",
    by: str,
    via: str,
    now: float | None = None,
) -> tuple[AccessRequest, list[Grant]]:
    """Approve the request until `ends` (by profile) or decline it; the decided request and the
    grants made. ActionError when there is no such request or it was already decided."""
    check_via(via)
    now = time.time() if now is None else now
    asked = store.get(request_id)
    if asked is None:
        raise ActionError(f"no request #{request_id}")
    if asked.state is not State.OPEN:
        raise ActionError(
            f"request #{request_id} ({asked.name}) was already {asked.state} by {asked.decided_by}"
        )
    if not approve:
        try:
            done = store.decide(request_id, approve=False, by=by, now=now)
        except RequestError as exc:
            raise ActionError(str(exc)) from None
        detail = f"declined the request for {asked.name}"
        record(config, by=by, via=via, action="decline", rows=[(asked.profile, detail)], now=now)
        return done, []
    if ends is None:
        raise ActionError("say how long the site is allowed")
    note = reason or f"request #{asked.id}" + (f": {asked.reason}" if asked.reason else "")
    made = allow_domains(config, [asked.profile], [asked.name], ends, reason=note, by=by,
                         via=via, now=now)  # fmt: skip
    try:
        done = store.decide(request_id, approve=True, by=by, grant_id=made[0].id, now=now)
    except RequestError as exc:  # decided by someone else meanwhile: take the grant back
        for grant in made:
            revoke(config, grant.id, by=by, via=via, now=now)
        raise ActionError(str(exc)) from None
    return done, made
