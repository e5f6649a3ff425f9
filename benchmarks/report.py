"""Printing a comparison: medians, requests/s, and the ratio to the baseline of the same run.

Ratios are given two ways. Overall: all requests of a variant against all of the baseline's.
Paired: the median over rounds of (variant's median in round i / baseline's median in round i);
a round's batches run back to back, so this one is the least sensitive to load from other
processes that comes and goes during a run.

``db cpu us``: CPU time of the PostgreSQL server process behind the worker's connection, per
request (in-process runs on this machine; read from /proc). It is less noisy than wall time
and shows what the database side of a variant costs, apart from the Python side (``cpu ms``).
"""

from __future__ import annotations

import statistics

from benchmarks.inprocess import Measured


def _paired(m: Measured, base: Measured) -> float:
    return statistics.median(
        a / b for a, b in zip(m.rounds_median_ns, base.rounds_median_ns, strict=True)
    )


def table(title: str, results: dict[str, Measured], baseline: str) -> str:
    base = results[baseline]
    lines = [
        title,
        f"  {'variant':<32}{'median ms':>10}{'+% vs plain':>12}{'paired +%':>10}{'req/s':>8}"
        f"{'x plain':>9}{'cpu ms':>8}{'+%':>7}{'db cpu us':>10}{'cold ms':>9}{'worker MB':>10}",
    ]
    for label, m in results.items():
        cpu, cpu_pct = "-", ""
        if m.cpu_ns:
            cpu = f"{m.cpu_median_ms:.3f}"
            cpu_pct = f"{(m.cpu_median_ms / base.cpu_median_ms - 1) * 100:+.1f}"
        db_cpu = f"{m.server_cpu_median_ms * 1000:.0f}" if m.server_cpu_ns else "-"
        cold = f"{m.cold_median_ms:.2f}" if m.cold_median_ms is not None else "-"
        rss = f"{m.rss_bytes / 2**20:.0f}" if m.rss_bytes else "-"
        lines.append(
            f"  {label:<32}{m.median_ms:>10.3f}{(m.median_ms / base.median_ms - 1) * 100:>+11.1f}%"
            f"{(_paired(m, base) - 1) * 100:>+9.1f}%{m.rps:>8.0f}{m.rps / base.rps:>9.3f}"
            f"{cpu:>8}{cpu_pct:>7}{db_cpu:>10}{cold:>9}{rss:>10}"
        )
    return "\n".join(lines)


def summary(results: dict[str, Measured], baseline: str) -> dict:
    """The same figures as a dict (for --json)."""
    base = results[baseline]
    return {
        label: {
            "requests": len(m.latencies_ns),
            "median_ms": round(m.median_ms, 4),
            "median_ratio_to_baseline": round(m.median_ms / base.median_ms, 4),
            "paired_median_ratio_to_baseline": round(_paired(m, base), 4),
            "p90_ms": round(statistics.quantiles(m.latencies_ns, n=10)[-1] / 1e6, 4),
            "rps": round(m.rps, 1),
            "rps_ratio_to_baseline": round(m.rps / base.rps, 4),
            "cpu_median_ms": round(m.cpu_median_ms, 4) if m.cpu_ns else None,
            "server_cpu_median_ms": (round(m.server_cpu_median_ms, 4) if m.server_cpu_ns else None),
            "cold_median_ms": round(m.cold_median_ms, 4) if m.cold_ns else None,
            "worker_rss_mb": round(m.rss_bytes / 2**20, 1) if m.rss_bytes else None,
        }
        for label, m in results.items()
    }
