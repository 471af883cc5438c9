"""When a change ends, for each profile: after a duration, at a time today, or tomorrow morning.

"Until tomorrow" means until the next morning: the next MORNING (06:00) in each profile's time
zone, so a pause made at 21:00 ends at 06:00 the next day, and one made at 02:00 at 06:00 the
same day (the morning after that night).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from filterdns.actions.common import ActionError, check_profiles, zone
from filterdns.config import Config
from filterdns.config.duration import MissingUnitError, parse_span
from filterdns.policy.values import UNTIL_RESUMED

MORNING = (6, 0)  # "until tomorrow": the next 06:00 (hour, minute) in the profile's zone


def ends_for(
    config: Config,
    profiles: Sequence[str],
    *,
    duration: str | float | None = None,
    until: str | None = None,
    tomorrow: bool = False,
    required: bool,
    now: float | None = None,
) -> dict[str, float]:
    """When it ends for each profile (unix time): `duration` from now ("30m", "2h", "1d", or
    seconds as a number), `until` an HH:MM today in each profile's zone, or `tomorrow` the next
    morning; with none of them UNTIL_RESUMED, or ActionError when one is `required`."""
    check_profiles(config, profiles)
    now = time.time() if now is None else now
    if sum(x is not None for x in (duration, until)) + tomorrow > 1:
        raise ActionError("give one end: a duration, a time today, or tomorrow")
    if duration is not None:
        return dict.fromkeys(profiles, now + seconds_of(duration))
    if until is not None:
        return {p: _until(config, p, until, now) for p in profiles}
    if tomorrow:
        return {p: next_morning(config, p, now) for p in profiles}
    if required:
        raise ActionError("say how long: --for 45m or --until 10:45")
    return dict.fromkeys(profiles, UNTIL_RESUMED)


def seconds_of(duration: str | float) -> float:
    """The seconds of a duration with its unit ("30m", "2h", "1d") or a number of seconds."""
    if isinstance(duration, str):
        try:
            seconds = parse_span(duration)
        except MissingUnitError:
            text = duration.strip()
            raise ActionError(f'--for needs a unit: 30m, 2h, 1d (not "{text}")') from None
        except ValueError:
            raise ActionError(f'--for "{duration}" is not a duration like 45m, 2h or 1d') from None
    else:
        seconds = float(duration)
    if not seconds > 0:  # NaN too
        raise ActionError("--for must be more than 0")
    if not math.isfinite(seconds):
        raise ActionError("--for must be a duration like 45m, 2h or 1d, not forever")
    return seconds


def next_morning(config: Config, profile: str, now: float) -> float:
    """The next MORNING (06:00) after `now` in the profile's zone."""
    tz = zone(config, profile)
    today = datetime.fromtimestamp(now, tz).date()
    for day in (today, today + timedelta(days=1)):
        # Built from the date, not by adding a day: a DST change keeps the morning at 06:00.
        end = datetime(day.year, day.month, day.day, *MORNING, tzinfo=tz).timestamp()
        if end > now:
            return end
    raise AssertionError("unreachable: tomorrow's morning is after now")  # pragma: no cover


def _until(config: Config, profile: str, text: str, now: float) -> float:
    tz = zone(config, profile)
    try:
        wanted = datetime.strptime(text.strip(), "%H:%M")
    except ValueError:
        raise ActionError(f'--until "{text}" is not a time of day like 10:45') from None
    today = datetime.fromtimestamp(now, tz)
    end = today.replace(hour=wanted.hour, minute=wanted.minute, second=0, microsecond=0)
    if end.timestamp() <= now:
        raise ActionError(
            f"--until {text}: it is already {today:%H:%M} for {profile} ({tz.key}); give a "
            "later time today, or --for"
        )
    return end.timestamp()
