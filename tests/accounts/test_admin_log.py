"""Each site's admin shows only its own admin log ("Recent actions"), even to a person who is a
member of two sites: row mode marks each entry with its tenant, schema mode keeps one log per
schema."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from accounts.models import Membership
from home.models import PageContent
from tenants.runtime.context import no_tenant, tenant_context
from tests.support.members import PASSWORD, make_member, signed_in
from tests.support.modes import SCHEMA_MODE

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_of_two_sites(tenants):
    """One person, an owner of acme and of global (row mode: one account with two
    memberships; schema mode: the same username and password in each site's schema)."""
    if SCHEMA_MODE:
        for slug in ("acme", "global"):
            make_member(tenants[slug], "two-sites")
    else:
        user = get_user_model()(username="two-sites")
        user.set_password(PASSWORD)
        user.provision_site = False
        with no_tenant():
            user.save()
        for slug in ("acme", "global"):
            with tenant_context(tenants[slug]):
                Membership.objects.create(user=user, role=Membership.Role.OWNER)
    return {slug: signed_in(f"{slug}.localhost", "two-sites") for slug in ("acme", "global")}


def recent_actions(client) -> str:
    page = client.get("/admin/").content.decode()
    return page.split('id="recent-actions-module"', 1)[1]


def test_a_member_of_two_sites_sees_each_sites_own_log(member_of_two_sites, tenants):
    acme, other = member_of_two_sites["acme"], member_of_two_sites["global"]
    form = {"body": "", "ordering": 1, "published": "on"}
    assert acme.post("/admin/home/pagecontent/add/", {**form, "title": "Acme secret plan"})
    assert other.post("/admin/home/pagecontent/add/", {**form, "title": "Global notice"})
    with tenant_context(tenants["acme"]):
        acme_pages = list(PageContent.objects.values_list("pk", flat=True)[:2])
    response = acme.post(
        "/admin/home/pagecontent/",
        {"action": "delete_selected", "_selected_action": acme_pages, "post": "yes"},
    )
    assert response.status_code == 302
    acme_log, global_log = recent_actions(acme), recent_actions(other)
    assert "Acme secret plan" in acme_log and "Acme rockets" in acme_log  # added, deleted
    assert "Global notice" in global_log
    assert "Acme secret plan" not in global_log and "Acme rockets" not in global_log
    assert "Global notice" not in acme_log
    for pk in acme_pages:
        assert f"/admin/home/pagecontent/{pk}/" not in global_log


def test_the_platform_sites_log_is_its_own(member_of_two_sites, tenants):
    """The same person as platform staff: the platform site's admin is a third log."""
    member_of_two_sites["acme"].post(
        "/admin/home/pagecontent/add/",
        {"title": "Acme secret plan", "body": "", "ordering": 1, "published": "on"},
    )
    assert "Acme secret plan" in recent_actions(member_of_two_sites["acme"])
    User = get_user_model()
    with no_tenant():
        staff = User.objects.filter(username="two-sites").first()
        if staff is None:  # schema mode: the platform's own account, in public
            staff = User(username="two-sites", password=make_password(PASSWORD))
            staff.provision_site = False
        staff.is_staff = staff.is_superuser = True
        staff.save()
    platform = signed_in("localhost", "two-sites")
    assert "Acme secret plan" not in recent_actions(platform)
