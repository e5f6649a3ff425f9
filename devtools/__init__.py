"""Developer tooling: the demo tenants (``seed_demo_tenants``) and benchmark tenants
(``create_bench_tenants``). Installed unless ``DEV_TOOLS=false``; production need not have it."""
