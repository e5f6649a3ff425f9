from tests.support.migrate_stages.steps import NumberWidgets as Migration  # noqa: F401
