from tests.support.migrate_stages.steps import Initial as Migration  # noqa: F401
