"""What the statement timeout costs behind a transaction pooler, where it rides in every
statement's prefix (tenants.backends.transaction_state): the same statement with and without
``SET LOCAL statement_timeout = 20000;`` in front, one message each, on one connection.

    .venv/bin/python benchmarks/statement_timeout_prefix.py [--statements 3000] [--runs 5]

Prints the median microseconds per statement of each variant (medians of the runs,
interleaved) and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.datasets import postgres_server_url  # noqa: E402

TENANT = 'SET LOCAL search_path = "public"; '
VARIANTS = {
    "tenant state only": TENANT + "SELECT 1",
    "with the statement timeout": "SET LOCAL statement_timeout = 20000; " + TENANT + "SELECT 1",
}


def per_statement(cursor, query: str, statements: int) -> float:
    """Microseconds per statement, its prefix's results skipped as the backend does."""
    skip = query.count(";")
    started = time.perf_counter()
    for _ in range(statements):
        cursor.execute(query)
        for _ in range(skip):
            cursor.nextset()
    return (time.perf_counter() - started) / statements * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    server = postgres_server_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        cursor = psycopg.ClientCursor(connection)  # as Django's: one simple-protocol message
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(options.runs):
            for name, query in VARIANTS.items():
                times[name].append(per_statement(cursor, query, options.statements))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{median:7.1f} µs  {name}")
    base, timed = medians.values()
    print(f"ratio: {timed / base:.3f}")


if __name__ == "__main__":
    main()
