"""Progress and tables for fleet-wide commands: rich on a terminal, plain lines in a log.

Operators run these commands both ways: by hand (a live bar with done, failed, rate and time
left) and from deploy scripts or cron (one line per event, nothing that redraws).
"""

from __future__ import annotations

import sys
import threading
import time

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


def console_for(stream=None) -> Console:
    """A rich console writing to ``stream`` (the command's real stdout), wide when not a tty."""
    stream = getattr(stream, "_out", stream) or sys.stdout  # unwrap Django's OutputWrapper
    terminal = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=stream, width=None if terminal else 160, highlight=False)


class _RateColumn(ProgressColumn):
    def render(self, task):
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "–/s", style="progress.data.speed")


class _FailedColumn(ProgressColumn):
    def render(self, task):
        failed = task.fields.get("failed", 0)
        return Text(f"{failed} failed", style="bold red" if failed else "dim")


class FleetProgress:
    """Counts items done and failed; draws a bar on a terminal, logs lines otherwise.

    Thread-safe: workers' callbacks may report from several threads.
    """

    def __init__(self, console: Console, total: int, label: str, *, verbosity: int = 1):
        self.console = console
        self.total = total
        self.label = label
        self.verbosity = verbosity
        self.done = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._next_log = 0.1
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.console.is_terminal and self.verbosity >= 1 and self.total:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _FailedColumn(),
                _RateColumn(),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, failed=0)
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        elif self.verbosity >= 1 and self.total and exc[0] is None:
            self._log_line()

    def advance(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if self._progress is not None:
                self._progress.update(self._task, advance=1, failed=self.failed)
                if not ok:
                    self._progress.console.print(f"[red]FAILED[/] {name}: {detail}")
                elif self.verbosity >= 2:
                    self._progress.console.print(f"ok {name} {detail}".rstrip())
                return
            if not ok:
                self.console.print(f"FAILED {name}: {detail}")
            elif self.verbosity >= 2:
                self.console.print(f"ok {name} {detail}".rstrip())
            if self.verbosity >= 1 and self.done / self.total >= self._next_log:
                while self.done / self.total >= self._next_log:
                    self._next_log += 0.1
                if self.done < self.total:
                    self._log_line()

    def _log_line(self):
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed else 0.0
        self.console.print(
            f"{self.label}: {self.done}/{self.total} done, {self.failed} failed, "
            f"{rate:,.0f}/s, {elapsed:.1f}s elapsed"
        )


def print_table(console: Console, title: str, headers: list[str], rows: list[list]) -> None:
    """A plain table: boxed on a terminal, simple columns in a log."""
    table = Table(
        title=title,
        box=box.ROUNDED if console.is_terminal else box.SIMPLE,
        title_justify="left",
        show_lines=False,
        show_header=any(headers),
    )
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


class StepProgress:
    """A multi-step operation on one thing (``tenants move``): a bar of its steps on a
    terminal, one timestamped line per step in a log (what a script or a test waits for)."""

    def __init__(self, console: Console, label: str, steps: tuple[str, ...]):
        self.console, self.label, self.steps = console, label, steps
        self.started = time.perf_counter()
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[step]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=len(self.steps), step="")
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            if exc[0] is None:
                self._progress.update(self._task, completed=len(self.steps), step="done")
            self._progress.__exit__(*exc)

    def step(self, name: str) -> None:
        done = self.steps.index(name) if name in self.steps else None
        if self._progress is not None:
            self._progress.update(self._task, completed=done, step=name)
            return
        elapsed = time.perf_counter() - self.started
        self.console.print(f"{self.label}: {name} ({elapsed:.2f} s)")
        self.console.file.flush()
