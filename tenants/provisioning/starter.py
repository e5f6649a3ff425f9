"""The content a self-service site starts with, so it is a real site the moment it exists."""


def starter_pages(site_name: str) -> list[dict]:
    """Pages (PageContent fields) for a new site called ``site_name``; the owner edits them."""
    return [
        {
            "title": f"{site_name} is live",
            "body": f"Welcome to {site_name}. This site is up and running, on its own address, "
            "with its own content that no other site can see.",
        },
        {
            "title": "Make it yours",
            "body": "Sign in to this site's admin (the link at the bottom of the page) with "
            "the username and password you signed up with, and change this text, add pages or "
            "unpublish the ones you do not need.",
        },
        {
            "title": f"About {site_name}",
            "body": "Tell your visitors who you are and what you do here.",
        },
    ]
