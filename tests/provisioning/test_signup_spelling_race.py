"""Concurrent sign-ups whose usernames differ only in case, '-' or '_' (different users, one
slug and one schema) give one site and the same clear "taken" answer to every other, through a
real server (gunicorn, several processes and threads) on PostgreSQL; nothing is left behind.

Schema mode first with spares in the pool (the losers raced the winner to rename one), then
with the pool empty (to create the schema).
"""

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from tests.http.test_signup_live import LiveSite, all_at_once, serve_live

SPARES = 8
ROUNDS_WITH_SPARES = 6
ROUNDS_WITHOUT = 4
SPELLINGS = [  # different usernames, one slug ("<stem>-x") and one schema ("<stem>_x")
    lambda stem: f"{stem}-x",
    lambda stem: f"{stem}_x",
    lambda stem: f"{stem.upper()}-X",
    lambda stem: f"{stem.upper()}_x",
    lambda stem: f"{stem.capitalize()}-x",
    lambda stem: f"{stem.capitalize()}_X",
]


class SpellingRaceSite(LiveSite):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.db_name += "_spelling"
        self.db_url = self.db_url.rsplit("/", 1)[0] + "/" + self.db_name
        self.env.update(
            DATABASE_URL=self.db_url,
            TENANCY_SCHEMA_POOL_SIZE=str(SPARES),
            TENANCY_SCHEMA_POOL_REFILL="command",  # spares are counted, not replaced
        )

    def start(self):
        super().start()
        if settings.TENANCY_MODE == "schema":
            self.manage("prepare_tenant_schemas", "--spares", str(SPARES))

    def drop_spares(self):
        with psycopg.connect(self.db_url, autocommit=True) as db:
            for (name,) in db.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '_spare_')"
            ).fetchall():
                db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    def spares(self) -> int:
        return self.count("SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, '_spare_')")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from serve_live(SpellingRaceSite(tmp_path_factory.mktemp("spelling")))


def race(site, stem: str) -> list[str]:
    """One round: every spelling of ``stem`` signs up at once; returns the refusals' messages."""
    names = [spelling(stem) for spelling in SPELLINGS]
    results = all_at_once(len(names), lambda i: site.sign_up(names[i]))
    statuses = sorted(status for status, _body in results)
    assert statuses == [201] + [400] * (len(names) - 1), results
    refusals = [
        body["errors"]["username"][0]["message"] for status, body in results if status != 201
    ]
    slug = f"{stem}-x".lower()
    assert site.count("SELECT count(*) FROM tenants_tenant WHERE slug = %s", [slug]) == 1
    assert (
        site.count("SELECT count(*) FROM auth_user WHERE lower(username) LIKE %s", [f"{stem}%"])
        == 1
    )
    assert site.tenant_schema_mismatch() == set()
    return refusals


def test_racing_spellings_of_one_name_give_one_site_and_taken_answers(site):
    spares_before = site.spares() if settings.TENANCY_MODE == "schema" else 0
    messages = []
    for n in range(ROUNDS_WITH_SPARES):
        messages += race(site, f"spell{n}")
    if settings.TENANCY_MODE == "schema":
        assert site.spares() == spares_before - ROUNDS_WITH_SPARES  # one per site, none lost
        site.drop_spares()
        for n in range(ROUNDS_WITHOUT):
            messages += race(site, f"empty{n}")
        assert site.spares() == 0
    for message in messages:
        assert "taken" in message or "already exists" in message, message
    assert site.get("spell0-x.localhost")[0] == 200
