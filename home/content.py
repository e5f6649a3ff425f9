"""Content written for the current tenant by code (sign-up, demo data)."""

from home.models import PageContent


def add_pages(pages: list[dict]) -> list[PageContent]:
    """Add pages (dicts of PageContent fields) to the current tenant, in the given order."""
    return PageContent.objects.bulk_create(
        PageContent(ordering=position, **fields) for position, fields in enumerate(pages, 1)
    )
