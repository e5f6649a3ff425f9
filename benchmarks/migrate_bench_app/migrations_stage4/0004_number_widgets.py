from benchmarks.migrate_bench_app.steps import NumberWidgets as Migration  # noqa: F401
