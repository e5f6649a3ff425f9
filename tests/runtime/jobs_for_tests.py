"""Jobs the job tests enqueue; the worker process imports them from here."""

from home.models import PageContent
from tenants.jobs import platform_task, tenant_task
from tenants.runtime.context import current_tenant


@tenant_task
def write_page(title):
    """Writes a page in the job's tenant; returns the tenant's id."""
    PageContent.objects.create(title=title, body="written by a job", published=False)
    return current_tenant().pk


@platform_task
def count_pages():
    """A platform job: tenant data fails closed there."""
    return PageContent.objects.count()
