"""The shared state's stores on a real PostgreSQL server: web accounts that sign in on every
instance, a child's requests kept apart per instance (private addresses repeat from one school
to the next), the changes people made, the budget minutes other instances counted, and the web
app of one instance pausing a child for all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import aiohttp
import pytest

from filterdns.config.budgets import BudgetConfig
from filterdns.policy.budgets import BudgetMeter
from filterdns.policy.grants import GrantError
from filterdns.policy.pggrants import PgGrantStore
from filterdns.policy.values import GrantKind
from filterdns.querylog import changes, pgshared
from filterdns.querylog.pgconn import migrate
from filterdns.querylog.pgshared import PgDb
from filterdns.web.accounts import AccountStore, Role
from filterdns.web.asks import RequestLimited, RequestStore
from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import config_for, running_proxy
from tests.integration.postgres import PgServer
from tests.integration.test_pg_log import select
from tests.integration.webapp import CSRF, PASSWORD

NOW = time.time()


@pytest.fixture
def db(server: PgServer) -> PgDb:
    return PgDb(server.new_database())


def test_an_account_made_on_one_instance_signs_in_on_another(db: PgDb) -> None:
    AccountStore(PgDb(db.url)).set_password("anna", PASSWORD, now=NOW)
    AccountStore(db).set_password("thu", PASSWORD, role=Role.TEACHER, profiles=["7a"], now=NOW)
    other = AccountStore(PgDb(db.url))
    assert other.check_password("anna", PASSWORD) is not None
    assert other.check_password("anna", "wrong password") is None
    teacher = other.get("thu")
    assert teacher is not None and teacher.profiles == ("7a",) and not teacher.may_see("7b")
    token = other.new_token("anna", "phone", now=NOW)
    account = AccountStore(db).check_token(token, now=NOW)
    assert account is not None and account.name == "anna"
    session, csrf = other.new_session("anna", lifetime=3600, now=NOW)
    assert AccountStore(db).session(session, now=NOW + 1) == (account, csrf)
    AccountStore(db).set_password("anna", "a new password here", now=NOW)  # ends sessions
    assert other.session(session, now=NOW + 2) is None
    stored = select(db.url, "SELECT password FROM web_accounts WHERE name = 'anna'")
    assert PASSWORD not in str(stored) and str(stored).count("scrypt$") == 1
    assert token not in str(select(db.url, "SELECT digest FROM web_tokens"))


def test_requests_are_kept_apart_per_instance(db: PgDb) -> None:
    school_a, school_b = RequestStore(db, "school-a"), RequestStore(db, "school-b")
    mine = school_a.add("10.0.0.5", "7a", "tiktok.com", "homework", now=NOW)
    theirs = school_b.add("10.0.0.5", "7b", "tiktok.com", "", now=NOW)  # same address, elsewhere
    assert mine.id != theirs.id
    with pytest.raises(RequestLimited):
        school_a.add("10.0.0.5", "7a", "tiktok.com", "again", now=NOW + 1)
    assert [r.id for r in school_a.recent(client="10.0.0.5")] == [mine.id]
    assert [r.id for r in school_b.recent(client="10.0.0.5")] == [theirs.id]
    assert {r.id for r in school_b.open()} == {mine.id, theirs.id}  # approvers see all
    decided = school_b.decide(mine.id, approve=False, by="thu", now=NOW + 2)
    assert decided.state == "declined" and school_a.get(mine.id) == decided


def test_the_changes_people_made_are_shared(db: PgDb) -> None:
    assert changes.recent(db) == []  # nothing written yet: no table, no error
    assert changes.record(db, who="anna", via="web", action="pause", profile="7a",
                          detail="paused for 15 min", now=NOW)  # fmt: skip
    assert changes.record(PgDb(db.url), who="thu", via="cli", action="allow", profile="7b",
                          detail="khanacademy.org allowed", now=NOW + 1)  # fmt: skip
    assert [c.who for c in changes.recent(db)] == ["thu", "anna"]
    assert [c.action for c in changes.recent(db, profiles=["7a"])] == ["pause"]


def test_a_request_approved_is_a_grant_every_instance_reads(db: PgDb, tmp_path: Path) -> None:
    asks = RequestStore(db, "school-a")
    ask = asks.add("10.0.0.5", "7a", "khanacademy.org", "maths", now=NOW)
    school_b = PgGrantStore(db.url, tmp_path / "b" / "filterdns.db")  # approved there
    (grant,) = school_b.add_many(["7a"], NOW + 1800, GrantKind.ALLOW_DOMAIN,
                                 domain="khanacademy.org", created_by="thu", now=NOW)  # fmt: skip
    asks.decide(ask.id, approve=True, by="thu", grant_id=grant.id, now=NOW)
    school_a = PgGrantStore(db.url, tmp_path / "a" / "filterdns.db")
    assert school_a.reload_if_changed() and school_a.current() == (grant,)
    assert school_a.reload_if_changed() is False  # the same grants: nothing to recompute
    assert school_b.revoke(grant.id, now=NOW) == grant
    assert school_a.reload_if_changed() and school_a.current() == ()
    assert school_b.active(now=NOW) == []


def test_a_database_it_cannot_reach_is_one_clear_line(tmp_path: Path) -> None:
    store = PgGrantStore("postgresql://filterdns@127.0.0.1:1/none", tmp_path / "filterdns.db")
    with pytest.raises(GrantError, match=r"cannot save the grant in postgresql://.*127\.0\.0\.1"):
        store.add("7a", 900, domain="example.org", now=NOW)


class Told(BudgetMeter):
    """A meter that says when it was told the other instances' minutes."""

    def __init__(self) -> None:
        super().__init__()
        self.told = asyncio.Event()

    def share(self, rows: Iterable[tuple[str, str, str, int]]) -> None:
        super().share(rows)
        self.told.set()


async def test_the_budget_minutes_of_the_other_instances_count(db: PgDb) -> None:
    today = time.strftime("%Y-%m-%d", time.gmtime(NOW))
    budget = BudgetConfig(name="games", per_day=3600.0, categories=("games",))
    await asyncio.to_thread(migrate, db.url)
    select(db.url, "INSERT INTO budget_usage VALUES ('school-b', 'kid', 'games', %s, 50),"
                   " ('school-c', 'kid', 'games', %s, 15), ('school-a', 'kid', 'games', %s, 9)",
           today, today, today)  # fmt: skip
    meter = Told()
    follower = asyncio.create_task(pgshared.follow_usage(db.url, "school-a", meter))
    try:
        async with asyncio.timeout(10):
            await meter.told.wait()
    finally:
        follower.cancel()
    day = date.fromisoformat(today)
    assert meter.minutes("kid", "games", day) == 65  # its own minutes are its meter's
    assert meter.minutes("kid", "games", day) * 60 >= budget.per_day  # spent, all sites counted


async def test_a_pause_tapped_in_one_instance_s_web_app_is_stored_for_all(db: PgDb) -> None:
    AccountStore(db).set_password("anna", PASSWORD, now=time.time())
    async with FakeUpstream({("example.com", "A"): ["93.184.216.34"]}) as upstream:
        text = config_for(
            upstream.address,
            server="instance: school-a",
            extra=f"""\
            log: {{database: "{db.url}"}}
            profiles: {{minh: {{age_band: 16-17}}}}
            default_profile: minh
            web: {{listen: "127.0.0.1:0"}}
        """,
        )
        async with running_proxy(text) as proxy:
            where = proxy.app.web_address
            assert where is not None
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(f"http://{where.host}:{where.port}",
                                             cookie_jar=jar) as http:  # fmt: skip
                reply = await http.post("/login", data={"name": "anna", "password": PASSWORD},
                                        allow_redirects=False)  # fmt: skip
                assert reply.status == 303
                found = CSRF.search(await (await http.get("/p/minh")).text())
                assert found is not None
                reply = await http.post("/p/minh/pause", data={"csrf": found[1], "for": "15m"},
                                        allow_redirects=False)  # fmt: skip
                assert reply.status == 303
    stored = select(db.url, "SELECT profile, kind, created_by FROM grants")
    assert stored == [("minh", "pause", "anna")]
    assert [(c.who, c.via, c.action) for c in changes.recent(db)] == [("anna", "web", "pause")]
