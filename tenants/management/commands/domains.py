"""manage.py domains ACTION: the host names that serve each tenant."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from tenants.management.actions import TENANT_HELP, action_parsers
from tenants.models import Domain
from tenants.operations import lifecycle
from tenants.operations.lifecycle import OperationError
from tenants.operations.progress import console_for, print_table
from tenants.runtime.context import no_tenant

EXAMPLES = {
    "list": "examples:\n  manage.py domains list\n  manage.py domains list acme --json",
    "add": """examples:
  manage.py domains add acme shop.acme.example
  manage.py domains add acme www.acme.example --primary""",
    "remove": "example:\n  manage.py domains remove shop.acme.example",
    "set-primary": "example:\n  manage.py domains set-primary www.acme.example",
}


class Command(BaseCommand):
    help = (
        "Manage tenants' domains: list, add, remove, set-primary. Host names are normalised "
        "(lowercase, IDN as punycode, no port or trailing dot); a domain serves one tenant "
        "only. 'manage.py domains ACTION --help' explains each action."
    )

    def add_arguments(self, parser):
        action = action_parsers(parser, EXAMPLES)

        listing = action("list", "List domains (of one tenant, or all).")
        listing.add_argument("tenant", nargs="?", help=TENANT_HELP)
        listing.add_argument("--json", action="store_true", dest="as_json", help="JSON output.")

        add = action("add", "Give a tenant another domain (refused if another tenant has it).")
        add.add_argument("tenant", help=TENANT_HELP)
        add.add_argument("domain", help="Host name, e.g. shop.example.com.")
        add.add_argument("--primary", action="store_true", help="Make it the primary domain.")

        remove = action("remove", "Remove a domain (not a tenant's primary or only one).")
        remove.add_argument("domain", help="Host name.")

        primary = action("set-primary", "Make a domain its tenant's primary domain.")
        primary.add_argument("domain", help="Host name.")

    def handle(self, *args, action, **options):
        handler = getattr(self, "do_" + action.replace("-", "_"))
        try:
            with no_tenant():
                return handler(**options)
        except OperationError as error:
            raise CommandError(str(error)) from error
        except ValidationError as error:
            raise CommandError(lifecycle.validation_message(error)) from error
        except DatabaseError as error:
            raise CommandError(f"Database error: {error}".strip()) from error

    def do_list(self, *, tenant, as_json, **_):
        domains = Domain.objects.select_related("tenant").order_by("tenant__slug", "domain")
        if tenant:
            domains = domains.filter(tenant=lifecycle.find_tenant(tenant))
        rows = [
            {"domain": d.domain, "tenant": d.tenant.slug, "primary": d.is_primary} for d in domains
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        print_table(
            console_for(self.stdout),
            f"{len(rows)} domains",
            ["Domain", "Tenant", "Primary"],
            [[r["domain"], r["tenant"], "yes" if r["primary"] else ""] for r in rows],
        )

    def do_add(self, *, tenant, domain, primary, **_):
        tenant = lifecycle.find_tenant(tenant)
        added = lifecycle.add_domain(tenant, domain, primary=primary)
        kind = "primary domain" if added.is_primary else "domain"
        self.stdout.write(f"{added.domain} is now a {kind} of {tenant.slug}.")

    def do_remove(self, *, domain, **_):
        found = lifecycle.find_domain(domain)
        lifecycle.remove_domain(found)
        self.stdout.write(f"{found.domain} no longer serves {found.tenant.slug}.")

    def do_set_primary(self, *, domain, **_):
        found = lifecycle.find_domain(domain)
        changed = lifecycle.set_primary(found)
        state = "is now" if changed else "was already"
        self.stdout.write(f"{found.domain} {state} the primary domain of {found.tenant.slug}.")
