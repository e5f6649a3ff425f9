"""Sub-commands of a management command: ``manage.py tenants ACTION``, ``manage.py domains
ACTION``. Each action's help is also its ``--help`` description, with its examples below.
Also the arguments several commands share."""

import argparse

from tenants.parallel import default_jobs

TENANT_HELP = "Slug, domain, schema name or id."


def action_parsers(parser, examples: dict[str, str]):
    """Add a required ACTION to ``parser``; returns ``add(name, help_text)``, which makes the
    parser of one action (its options are added to what it returns)."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, title="actions")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=examples.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    return add


def add_jobs_argument(parser, what: str) -> None:
    """``--jobs/-j N``: how many at once, the CPU count by default."""
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=default_jobs(),
        help=f"{what} (default: CPU count, %(default)s).",
    )
