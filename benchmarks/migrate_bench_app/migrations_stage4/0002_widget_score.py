from benchmarks.migrate_bench_app.steps import AddScore as Migration  # noqa: F401
