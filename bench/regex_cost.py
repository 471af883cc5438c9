"""What regex rules cost a name the policy has not decided before, and a repeated one.

    .venv/bin/python bench/regex_cost.py [--names 2000] [--rounds 5] [--rules 0,8,64,256]

An index of one hashed name per list plus N regex rules, spread over lists of 64 rules at most
(the per-list bound, `regexes.MAX_PER_LIST`), all in a category the profile blocks. Each round
decides `--names` names never seen before (none matches a rule, so every rule is searched: the
worst case), then the same names again (remembered: the rules are not looked at). Prints the
median µs per name over the rounds for each N.
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
import time

from filterdns.config import default_config, load_config_text
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.indexfile import ListInfo
from filterdns.policy.decisions import Policy
from filterdns.regexes import MAX_PER_LIST

CONFIG = """\
profiles: {kid: {age_band: 9-12, band_schedules: false}}
default_profile: kid
"""
SHAPES = (
    r"^ad{i}[s]?\d*\.",
    r"^(.+[_.-])?telemetry{i}[_.-]",
    r"^track{i}(er)?[0-9]*\.",
    r"casino{i}[0-9]+\.",
)
NOW = 1_790_000_000.0


def policy(rules: int) -> Policy:
    """A policy over `rules` regex rules in lists of at most MAX_PER_LIST."""
    builder = IndexBuilder()
    lists = max(1, -(-rules // MAX_PER_LIST))
    ids = []
    for n in range(lists):
        list_id = builder.add_list(ListInfo("gambling", f"bench/rules-{n}.txt"))
        builder.add_many(list_id, [f"listed{n}.example"])
        ids.append(list_id)
    for i in range(rules):
        builder.add_regex(ids[i // MAX_PER_LIST], SHAPES[i % len(SHAPES)].format(i=i), i + 1)
    index = builder.finish()
    config = load_config_text(textwrap.dedent(CONFIG), defaults=default_config(is_root=False))
    return Policy(config, lambda: index)


def per_name(sut: Policy, names: list[str]) -> float:
    """µs per decision over `names`."""
    decide = sut.decide
    start = time.perf_counter()
    for name in names:
        decide("kid", name, NOW)
    return (time.perf_counter() - start) / len(names) * 1e6


def main() -> None:
    """Measure and print one line per rule count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", default="0,8,64,256")
    args = parser.parse_args()
    print(f"{'rules':>6} {'unseen name µs':>15} {'per rule µs':>12} {'repeated name µs':>17}")
    base = None
    for rules in (int(x) for x in args.rules.split(",")):
        sut = policy(rules)
        unseen, repeated = [], []
        for r in range(args.rounds):
            names = [f"www.site{r}-{i}.example.net" for i in range(args.names)]
            unseen.append(per_name(sut, names))
            repeated.append(per_name(sut, names))
        cost = statistics.median(unseen)
        base = cost if base is None else base
        slope = (cost - base) / rules if rules else 0.0
        print(f"{rules:>6} {cost:>15.2f} {slope:>12.3f} {statistics.median(repeated):>17.2f}")


if __name__ == "__main__":
    main()
