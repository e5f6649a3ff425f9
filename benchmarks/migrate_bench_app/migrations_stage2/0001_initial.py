from benchmarks.migrate_bench_app.steps import Initial as Migration  # noqa: F401
