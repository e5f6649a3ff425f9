from django.conf import settings
from django.core.management.base import BaseCommand

from devtools.demo import DEMO_TENANTS
from tenants.conf import is_platform_slug
from tenants.models import Tenant
from tenants.provisioning.services import create_tenant


class Command(BaseCommand):
    help = (
        "Create the five demo tenants (Default Tenant, Acme Corporation, JCW Trading Hub, "
        "Tech Innovations, Global Services) with their domains, schemas and content. "
        "Tenants that already exist are left as they are, so it is safe to run again."
    )

    def handle(self, *args, **options):
        existing = set(Tenant.objects.values_list("slug", flat=True))
        for spec in DEMO_TENANTS:
            if spec["slug"] in existing:
                self.stdout.write(f"exists   {spec['name']} ({spec['domain']})")
                continue
            if is_platform_slug(spec["slug"]):
                spec = {**spec, "name": settings.PLATFORM_NAME}
            result = create_tenant(**spec, reserved_ok=True)  # the names are kept for them
            self.stdout.write(self.style.SUCCESS(f"created  {result.message}"))
