"""Background jobs that carry their tenant, on django-tasks (Django 6's tasks framework,
backported). A separate worker process runs them: ``manage.py db_worker`` (or ``rqworker``).

    from tenants.jobs import tenant_task

    @tenant_task
    def export_pages(fmt): ...        # runs in the tenant that enqueued it

    export_pages.enqueue("csv")       # in a request, or in tenant_context(): that tenant

* ``enqueue()`` captures the current tenant (its id) and sends the job to the queue only when
  the transaction commits: a rolled-back request or sign-up enqueues nothing;
* the worker restores the tenant with ``tenant_context()`` before the job runs: the row filter
  and, in schema mode, the schema;
* fail closed: enqueueing with no tenant raises ``TenantRequired``, and a queued job that carries
  no tenant (put on the queue around this module) raises ``JobWithoutTenant`` in the worker
  instead of running unscoped;
* a tenant deactivated or deleted before its job runs: the job is skipped (logged);
* ``fan_out(task, ...)`` enqueues one job per active tenant (periodic jobs:
  ``manage.py enqueue_job PATH --all-tenants`` from cron).
"""

from __future__ import annotations

import logging
from inspect import iscoroutinefunction

from django.db import transaction
from django_tasks.base import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, Task
from django_tasks.exceptions import InvalidTaskError

from tenants.models import Tenant
from tenants.runtime.context import current_tenant, no_tenant, tenant_context
from tenants.runtime.scoping import TenantRequired

logger = logging.getLogger(__name__)

# The keyword argument that carries the tenant's id through the queue.
TENANT_KWARG = "_tenant_id"


class JobWithoutTenant(TenantRequired):
    """A tenant job reached the worker without a tenant: it is not run."""


class TenantTask(Task):
    """A django-tasks ``Task`` that runs in the tenant it was enqueued in."""

    def enqueue(self, *args, **kwargs):
        """Queue the job for the current tenant once the transaction commits. Returns the
        ``TaskResult`` if it was sent at once (no transaction), else None."""
        tenant = current_tenant()
        if tenant is None:
            raise TenantRequired(
                f"{self.name} is a tenant job but no tenant is active; enqueue it in a request "
                "or in tenant_context(), or use enqueue_for(tenant, ...)."
            )
        return self.enqueue_for(tenant, *args, **kwargs)

    def enqueue_for(self, tenant: Tenant, *args, **kwargs):
        """Queue the job for ``tenant`` once the transaction commits (see ``enqueue()``)."""
        if tenant is None or tenant.pk is None:
            raise TenantRequired(f"{self.name} needs a saved tenant.")
        if TENANT_KWARG in kwargs:
            raise ValueError(f"{TENANT_KWARG} is reserved for the job's tenant.")
        return _when_committed(self, args, {**kwargs, TENANT_KWARG: tenant.pk})

    async def aenqueue(self, *args, **kwargs):
        raise InvalidTaskError("Tenant jobs are enqueued with enqueue() (after the commit).")

    def call(self, *args, **kwargs):
        """What the worker runs: the job, in its tenant (or not at all)."""
        tenant_id = kwargs.pop(TENANT_KWARG, None)
        if tenant_id is None:
            raise JobWithoutTenant(
                f"Job {self.module_path} carries no tenant; it was not run (tenant jobs are "
                "enqueued with .enqueue() in a tenant's context)."
            )
        tenant = _runnable_tenant(tenant_id)
        if tenant is None:
            logger.warning(
                "Skipped job %s: tenant %s is inactive or deleted.", self.module_path, tenant_id
            )
            return None
        with tenant_context(tenant):
            return super().call(*args, **kwargs)


class PlatformTask(Task):
    """A job about the whole platform: it runs with no tenant active (tenant data fails closed
    there). Enqueued after the commit, like tenant jobs."""

    def enqueue(self, *args, **kwargs):
        return _when_committed(self, args, kwargs)

    def call(self, *args, **kwargs):
        with no_tenant():
            return super().call(*args, **kwargs)


def _task_decorator(task_class):
    def decorator(
        function=None,
        *,
        priority: int = 0,
        queue_name: str = DEFAULT_TASK_QUEUE_NAME,
        backend: str = DEFAULT_TASK_BACKEND_ALIAS,
        takes_context: bool = False,
    ):
        def wrap(func):
            if iscoroutinefunction(func):
                raise InvalidTaskError("Tenant and platform jobs are plain functions.")
            return task_class(
                func=func,
                priority=priority,
                queue_name=queue_name,
                backend=backend,
                takes_context=takes_context,
                run_after=None,
            )

        return wrap(function) if function is not None else wrap

    return decorator


tenant_task = _task_decorator(TenantTask)
tenant_task.__doc__ = "``@tenant_task`` or ``@tenant_task(queue_name=...)``: a TenantTask."
platform_task = _task_decorator(PlatformTask)
platform_task.__doc__ = "``@platform_task``: a job that runs with no tenant (PlatformTask)."


def fan_out(task: TenantTask, *args, **kwargs) -> int:
    """Enqueue ``task`` once for every active tenant (in one transaction); returns how many."""
    with no_tenant():
        tenants = list(Tenant.objects.filter(is_active=True).order_by("pk"))
    with transaction.atomic():
        for tenant in tenants:
            task.enqueue_for(tenant, *args, **kwargs)
    return len(tenants)


def _when_committed(task: Task, args, kwargs):
    """Send the job to its backend when the current transaction commits (at once outside one).
    The queue is platform data: in schema mode its table is in public, so no tenant is active
    while it is written."""
    sent = []

    def send():
        with no_tenant():
            sent.append(task.get_backend().enqueue(task, args, kwargs))

    transaction.on_commit(send)
    return sent[0] if sent else None


def _runnable_tenant(tenant_id) -> Tenant | None:
    with no_tenant():
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is not None:
            # Read here, as the resolver does for requests: in schema mode the job's own schema
            # cannot see the domain table, and Tenant.url() needs it.
            tenant.primary_domain  # noqa: B018
        return tenant
