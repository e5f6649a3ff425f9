"""The demo tenants (seed_demo_tenants, committed once per run by tests/conftest.py): their
hosts, and a title each one's home page shows and no other does."""

DEMO_HOSTS = {
    "default": "localhost",
    "acme": "acme.localhost",
    "jcw-site": "jcwtradehub.com",
    "techinnov": "techinnov.localhost",
    "global": "global.localhost",
}
DEMO_TITLES = {
    "default": "One codebase, many sites",
    "acme": "Acme rockets",
    "jcw-site": "JCW market watch",
    "techinnov": "Tech Innovations lab",
    "global": "Global Services worldwide",
}
