from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.provisioning.services import SiteNameUnavailable, provision_tenant_for_user
from tenants.runtime.context import no_tenant


class Command(BaseCommand):
    help = (
        "Provision a self-service site for an existing platform user: schema, domain "
        "<slug>.TENANT_BASE_DOMAIN, starter content and the user's admin access, all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username of the platform account.")
        parser.add_argument("--name", help='Site name (default: "<username>\'s site").')
        parser.add_argument("--slug", help="Site slug (default: from the username).")

    def handle(self, *args, user, name=None, slug=None, **options):
        with no_tenant():
            account = get_user_model().objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"No platform user is called {user!r}.")
            try:
                result = provision_tenant_for_user(account, name=name, slug=slug)
            except SiteNameUnavailable as refused:
                raise CommandError(refused.reason) from refused
            except ValidationError as invalid:
                raise CommandError("; ".join(invalid.messages)) from invalid
        self.stdout.write(self.style.SUCCESS(result.message))
        self.stdout.write(result.tenant.url("/"))
