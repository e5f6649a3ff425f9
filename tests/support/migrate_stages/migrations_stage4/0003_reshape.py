from tests.support.migrate_stages.steps import Reshape as Migration  # noqa: F401
