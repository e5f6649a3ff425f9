import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from tenants.jobs import PlatformTask, TenantTask, fan_out
from tenants.operations.lifecycle import OperationError, find_tenant


class Command(BaseCommand):
    help = (
        "Enqueue a background job (a @tenant_task or @platform_task) for the worker: for one "
        "tenant, for every active tenant (periodic jobs, from cron), or for the platform."
    )
    epilog = """examples:
  manage.py enqueue_job home.jobs.report --all-tenants          (cron: once per active tenant)
  manage.py enqueue_job home.jobs.report --tenant acme --kwargs '{"days": 7}'"""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = self.epilog
        return parser

    def add_arguments(self, parser):
        parser.add_argument("job", help="Dotted path of the job, e.g. home.jobs.report.")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--tenant", help="Slug, domain, schema name or id of the tenant.")
        target.add_argument("--all-tenants", action="store_true", help="One job per active tenant.")
        parser.add_argument(
            "--args", dest="job_args", default="[]", help="JSON list of positional arguments."
        )
        parser.add_argument(
            "--kwargs", dest="job_kwargs", default="{}", help="JSON object of keyword arguments."
        )

    def handle(self, *, job, tenant, all_tenants, job_args, job_kwargs, **options):
        task = _load_job(job)
        args, kwargs = _json(job_args, list, "--args"), _json(job_kwargs, dict, "--kwargs")
        if isinstance(task, TenantTask):
            if all_tenants:
                count = fan_out(task, *args, **kwargs)
                self.stdout.write(f"Enqueued {job} for {count} active tenants.")
                return
            if not tenant:
                raise CommandError(f"{job} is a tenant job: give --tenant or --all-tenants.")
            try:
                target = find_tenant(tenant)
            except OperationError as error:
                raise CommandError(str(error)) from error
            task.enqueue_for(target, *args, **kwargs)
            self.stdout.write(f"Enqueued {job} for {target.slug}.")
        else:
            if tenant or all_tenants:
                raise CommandError(f"{job} is a platform job: it takes no tenant.")
            task.enqueue(*args, **kwargs)
            self.stdout.write(f"Enqueued {job}.")


def _load_job(path: str):
    try:
        task = import_string(path)
    except ImportError as error:
        raise CommandError(f"No job {path!r}: {error}") from error
    if not isinstance(task, TenantTask | PlatformTask):
        raise CommandError(f"{path} is not a @tenant_task or @platform_task.")
    return task


def _json(text: str, kind: type, option: str):
    try:
        value = json.loads(text)
    except ValueError as error:
        raise CommandError(f"{option} is not valid JSON: {error}") from error
    if not isinstance(value, kind):
        raise CommandError(f"{option} must be a JSON {'list' if kind is list else 'object'}.")
    return value
