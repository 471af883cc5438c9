"""The size of a log row in PostgreSQL and how fast one connection COPYs them (docs/scale.md).

A throw-away cluster (tests/integration/postgres.py: Debian's binaries, a free loopback port),
the filterdns schema, then ROWS blocked-lookup rows shaped like a school's (names from the
shared query workload, a client address and device name, a class profile, a category, the rule,
reason and list source as the policy writes them) COPYed in one transaction through the writer's
statement. Prints bytes a row with the indexes and rows a second.

    .venv/bin/python bench/pg_rows.py [ROWS]
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filterdns.querylog import pgconn, pgschema  # noqa: E402
from tests.integration.postgres import cluster  # noqa: E402

WORKLOAD = ROOT.parent / "shared" / "data" / "queries" / "household_school_mix_100k.txt"
CATEGORIES = ("adult", "gambling", "games", "social", "bypass", "malware", "video")


def rows(count: int, start: float) -> list[list[object]]:
    names = WORKLOAD.read_text().split()
    pick = random.Random(20261130)
    made = []
    for i in range(count):
        name, category = names[i % len(names)], pick.choice(CATEGORIES)
        values = {
            "instance": "school-042", "ts": start + i * 0.2,
            "client": f"10.{i % 50}.{i % 200}.{i % 250}", "client_name": f"lab-{i % 600}",
            "profile": f"class-{i % 40}", "name": name, "qtype": "A", "kind": "blocked",
            "category": category, "rule": f"age band 13-15 blocks {category}",
            "reason": f"blocked: {name} is in the {category} list",
            "source": f"shipped:{category}.txt.gz:{i}", "response": "nxdomain", "hits": 1,
        }  # fmt: skip
        made.append([values[c] for c in pgschema.QUERY_COLUMNS])
    return made


async def measure(url: str, count: int) -> tuple[float, float]:
    conn = await pgconn.connect(url)
    try:
        await pgconn.migrate(conn, url)
        now = time.time()
        for day in pgschema.ahead(now):
            await conn.execute(pgschema.create_partition(day))
        batch = rows(count, pgschema.day_of(now) + 3600)
        started = time.monotonic()
        async with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(pgschema.COPY_QUERIES) as copy,
        ):
            for row in batch:
                await copy.write_row(row)
        took = time.monotonic() - started
        found = await conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
            " WHERE inhparent = 'queries'::regclass"
        )
        (size,) = await found.fetchone() or (0,)
        return float(size) / count, count / took
    finally:
        await conn.close()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with cluster() as server:
        per_row, rate = asyncio.run(measure(server.new_database(), count))
    print(f"{count:,} rows: {per_row:.0f} bytes a row with its indexes; COPY {rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
