"""Background jobs carry their tenant: enqueued here, run by a separate worker process
(``manage.py db_worker``) on the committed test database, in both modes."""

import uuid

import pytest
from django.db import transaction
from django_scopes import ScopeError
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from home.models import PageContent
from tenants.jobs import TENANT_KWARG, JobWithoutTenant
from tenants.models import Tenant
from tenants.runtime.context import no_tenant, tenant_context
from tenants.runtime.scoping import TenantRequired
from tests.runtime import jobs_for_tests
from tests.support.servers import manage
from tests.support.worker import process_env, run_worker


@pytest.fixture
def demo(committed_db):
    """The demo tenants; an empty job queue before and after; job pages removed after."""
    DBTaskResult.objects.all().delete()
    tenants = {t.slug: t for t in Tenant.objects.all()}
    yield tenants
    DBTaskResult.objects.all().delete()
    for tenant in tenants.values():
        with tenant_context(tenant):
            PageContent.objects.filter(title__startswith="job-").delete()


def stamp():
    return f"job-{uuid.uuid4().hex[:8]}"


def pages_titled(title) -> dict[str, int]:
    """How many pages with ``title`` each tenant has, read in each tenant's own context."""
    counts = {}
    for tenant in Tenant.objects.all():
        with tenant_context(tenant):
            counts[tenant.slug] = PageContent.objects.filter(title=title).count()
    return counts


def only(slug, counts):
    return {name: (1 if name == slug else 0) for name in counts}


def test_job_enqueued_in_a_tenant_writes_its_row_there_only(demo):
    title = stamp()
    with tenant_context(demo["acme"]):
        result = jobs_for_tests.write_page.enqueue(title)
    assert result is not None  # no transaction: sent at once
    assert DBTaskResult.objects.get(id=result.id).args_kwargs["kwargs"] == {
        TENANT_KWARG: demo["acme"].pk
    }

    log = run_worker()

    done = DBTaskResult.objects.get(id=result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL, log
    assert done.return_value == demo["acme"].pk
    counts = pages_titled(title)
    assert counts == only("acme", counts)
    with tenant_context(demo["acme"]):
        assert PageContent.objects.get(title=title).tenant_id == demo["acme"].pk


def test_job_enqueued_in_a_transaction_that_rolls_back_never_runs(demo):
    title = stamp()
    with tenant_context(demo["acme"]), pytest.raises(RuntimeError), transaction.atomic():
        assert jobs_for_tests.write_page.enqueue(title) is None  # waits for the commit
        raise RuntimeError("the request failed")
    assert not DBTaskResult.objects.exists()

    with tenant_context(demo["global"]), transaction.atomic():
        jobs_for_tests.write_page.enqueue(title)
        with no_tenant():  # the queue is platform data (public schema)
            assert not DBTaskResult.objects.exists()  # not before the commit
    assert DBTaskResult.objects.count() == 1

    run_worker()
    counts = pages_titled(title)
    assert counts == only("global", counts)


def test_enqueueing_a_tenant_job_with_no_tenant_raises(demo):
    with pytest.raises(TenantRequired, match="no tenant is active"):
        jobs_for_tests.write_page.enqueue(stamp())
    with no_tenant(), pytest.raises(TenantRequired):
        jobs_for_tests.write_page.enqueue(stamp())
    assert not DBTaskResult.objects.exists()


def test_a_queued_job_without_tenant_fails_in_the_worker_instead_of_running(demo):
    """A job put on the queue around tenants.jobs (here: straight through the backend) is
    refused by the worker: it raises, records the failure, writes nothing anywhere."""
    title = stamp()
    task = jobs_for_tests.write_page
    forged = task.get_backend().enqueue(task, [title], {})

    log = run_worker()

    failed = DBTaskResult.objects.get(id=forged.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.exception_class_path == "tenants.jobs.JobWithoutTenant"
    assert "carries no tenant" in failed.traceback
    assert "JobWithoutTenant" in log
    assert set(pages_titled(title).values()) == {0}
    with pytest.raises(JobWithoutTenant):
        task.call(title)


def test_a_job_of_an_inactive_or_deleted_tenant_is_skipped(demo):
    title = stamp()
    with tenant_context(demo["techinnov"]):
        jobs_for_tests.write_page.enqueue(title)
    jobs_for_tests.write_page.enqueue_for(demo["global"], title)
    with no_tenant():
        # A tenant id that no longer exists (deleted after the job was queued).
        missing = Tenant(pk=Tenant.objects.order_by("-pk").first().pk + 1000, slug="gone")
    jobs_for_tests.write_page.enqueue_for(missing, title)
    Tenant.objects.filter(pk=demo["techinnov"].pk).update(is_active=False)
    try:
        log = run_worker()
    finally:
        Tenant.objects.filter(pk=demo["techinnov"].pk).update(is_active=True)

    assert log.count("inactive or deleted") == 2
    statuses = set(DBTaskResult.objects.values_list("status", flat=True))
    assert statuses == {TaskResultStatus.SUCCESSFUL}
    counts = pages_titled(title)
    assert counts == only("global", counts)


def test_periodic_fan_out_runs_once_in_every_active_tenant(demo):
    """``enqueue_job --all-tenants`` (what cron runs) queues one job per active tenant; the
    worker runs each in its own tenant; an inactive tenant gets none."""
    title = stamp()
    Tenant.objects.filter(pk=demo["jcw-site"].pk).update(is_active=False)
    try:
        done = manage(
            "enqueue_job",
            "tests.runtime.jobs_for_tests.write_page",
            "--all-tenants",
            "--args",
            f'["{title}"]',
            env=process_env(),
        )
        run_worker()
    finally:
        Tenant.objects.filter(pk=demo["jcw-site"].pk).update(is_active=True)

    active = len(demo) - 1
    assert f"for {active} active tenants" in done.stdout
    assert DBTaskResult.objects.filter(status=TaskResultStatus.SUCCESSFUL).count() == active
    counts = pages_titled(title)
    assert counts == {slug: 0 if slug == "jcw-site" else 1 for slug in demo}


def test_platform_jobs_run_with_no_tenant(demo):
    result = jobs_for_tests.count_pages.enqueue()
    run_worker()
    failed = DBTaskResult.objects.get(id=result.id)
    assert failed.status == TaskResultStatus.FAILED  # tenant data fails closed with no tenant
    assert failed.exception_class_path.endswith("ScopeError")
    with tenant_context(demo["acme"]), pytest.raises(ScopeError):
        jobs_for_tests.count_pages.call()


def test_enqueue_job_command_refuses_what_it_cannot_do(demo):
    path = "tests.runtime.jobs_for_tests.write_page"
    cases = [
        ([path], "give --tenant or --all-tenants"),
        ([path, "--tenant", "no-such-tenant"], "No tenant"),
        ([path, "--tenant", "acme", "--args", "{"], "not valid JSON"),
        (["tests.runtime.jobs_for_tests.current_tenant"], "not a @tenant_task"),
        (["no.such.job"], "No job"),
        (["tests.runtime.jobs_for_tests.count_pages", "--all-tenants"], "takes no tenant"),
    ]
    for args, message in cases:
        done = manage("enqueue_job", *args, env=process_env(), check=False)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert not DBTaskResult.objects.exists()
