from tests.support.migrate_stages.steps import AddScore as Migration  # noqa: F401
