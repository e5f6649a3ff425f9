from benchmarks.migrate_bench_app.steps import Reshape as Migration  # noqa: F401
