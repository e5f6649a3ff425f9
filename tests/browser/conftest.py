"""Browser tests: Playwright drives Debian's Chromium against a real server process.

Chromium comes from the system (``apt-get install chromium``, done by scripts/test when it is
missing); Playwright never downloads a browser here. ``*.localhost`` resolves to the loopback
in Chromium, so tenant sites are reached by name.
"""

import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from accounts.models import Membership
from tenants.runtime.context import tenant_context
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, REAL_HASHERS, SCREENSHOTS
from tests.support.members import make_member
from tests.support.modes import MODE
from tests.support.servers import start_production_server


@pytest.fixture(scope="package")
def _sync_orm_beside_playwright():
    """Playwright's sync API keeps an event loop in this thread, so Django's ORM (plain sync
    code here) would refuse to run (SynchronousOnlyOperation). Allowed for these tests only,
    while the browser is up."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package")
def browser(_sync_orm_beside_playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: run scripts/test (it installs it), or "
            "`apt-get install -y chromium`."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def db(django_db_setup, django_db_blocker, settings):
    """Here ``db`` is database access whose writes are committed at once (pytest-django's
    wraps each test in a transaction the server process could not see). Under this name
    pytest-django still sets up the test database for these tests. Tests clean up what they
    commit: the test database is shared by the whole run."""
    settings.PASSWORD_HASHERS = REAL_HASHERS
    with django_db_blocker.unblock():
        yield
        # Connections made while Playwright's loop runs belong to this context: close them
        # here, or the test database cannot be dropped at the end of the run.
        connections.close_all()


@pytest.fixture
def server(db, tmp_path):
    process = start_production_server(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, "name") -> artifacts/screenshots/<mode>-<name>.png (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = SCREENSHOTS / f"{MODE}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def member_of(db):
    """member_of(tenant, role) -> a committed member with a fresh username; left in place,
    inactive, after the test. (Deleting a user from a tenant's schema trips over
    Tenant.owner, whose table is not on that schema's search_path.)"""
    made = []

    def make(tenant, role=Membership.Role.OWNER):
        user = make_member(tenant, f"member-{uuid.uuid4().hex[:8]}", role)
        made.append((tenant, user))
        return user

    yield make
    for tenant, user in made:
        with tenant_context(tenant):
            get_user_model().objects.filter(pk=user.pk).update(is_active=False)
