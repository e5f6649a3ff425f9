"""The demo tenants from the product brief, each with content of its own."""

DEMO_TENANTS = [
    {
        "name": "Default Tenant",
        "slug": "default",
        "domain": "localhost",
        "schema_name": "public",  # schema mode: the platform's own site lives in public
        "pages": [
            {
                "title": "One codebase, many sites",
                "body": "This is the platform's own site. Every tenant gets a site of its "
                "own, on its own domain, seeing only its own data.",
            },
            {
                "title": "Start your site",
                "body": "Sign up and your site is live at once on a subdomain of its own.",
            },
        ],
    },
    {
        "name": "Acme Corporation",
        "slug": "acme",
        "domain": "acme.localhost",
        "pages": [
            {"title": "Acme rockets", "body": "Acme rockets reach orbit on the first try."},
            {"title": "Acme anvils", "body": "Forged anvils, delivered anywhere in the desert."},
            {"title": "About Acme", "body": "Acme Corporation: quality gadgets since 1949."},
        ],
    },
    {
        "name": "JCW Trading Hub",
        "slug": "jcw-site",
        "domain": "jcwtradehub.com",
        "schema_name": "jcw_site",
        "pages": [
            {"title": "JCW market watch", "body": "Daily commodity prices from the JCW desk."},
            {"title": "Trade with JCW", "body": "Open a JCW trading account in minutes."},
            {"title": "JCW research", "body": "Weekly research notes from JCW analysts."},
        ],
    },
    {
        "name": "Tech Innovations",
        "slug": "techinnov",
        "domain": "techinnov.localhost",
        "pages": [
            {"title": "Tech Innovations lab", "body": "Prototypes from the Tech Innovations lab."},
            {"title": "Innovation grants", "body": "Tech Innovations funds open hardware."},
        ],
    },
    {
        "name": "Global Services",
        "slug": "global",
        "domain": "global.localhost",
        "pages": [
            {"title": "Global Services worldwide", "body": "Global Services in 40 countries."},
            {"title": "Global logistics", "body": "Global Services ships door to door."},
        ],
    },
]
