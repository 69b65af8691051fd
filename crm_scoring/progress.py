"""What a long `crm-score` command is doing: a step line with a bar, elapsed time and ETA on stderr.

The library layers report through a plain callback, `progress(step, done, total)` (`done`/`total` count the
command's steps, models or chunks; None when the work is not countable). `shown(title)` opens the display
for one command and makes `report` forward to it; with no display open (tests, the notebook) or when stderr is
not a terminal (pipes, CI), `report` does nothing and nothing is printed. While the bar shows, log records go
through a `RichHandler` on the bar's console, so a warning prints above the bar instead of over it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Report = Callable[..., None]

_active: list[Report] = []


def report(step: str, done: int | None = None, total: int | None = None) -> None:
    """Tell the open display (if any) the current step and, when countable, how far along it is."""
    if _active:
        _active[-1](step, done, total)


@contextmanager
def listening(callback: Report) -> Iterator[Report]:
    """Route `report` to `callback(step, done, total)` while the block runs (the display, or a test's recorder)."""
    _active.append(callback)
    try:
        yield report
    finally:
        _active.remove(callback)


@contextmanager
def shown(title: str) -> Iterator[Report]:
    """Show `title: step` with a bar and ETA on a stderr terminal while the block runs; yields `report`."""
    if not sys.stderr.isatty():
        yield report
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn())
    times = (_elapsed_column()(time.monotonic()), TextColumn("eta"), TimeRemainingColumn())
    bar = Progress(*columns, *times, console=console, transient=True, redirect_stdout=False)
    task = [bar.add_task(title, total=None)]

    def update(step: str, done: int | None, total: int | None) -> None:
        description = f"{title}: {step}"
        if total is None and bar.tasks[-1].total is not None:  # a step that is not counted: no stale bar
            bar.remove_task(task[0])
            task[0] = bar.add_task(description, total=None)
        bar.update(task[0], description=description, completed=done or 0, total=total)

    with bar, _logs_above(console), listening(update):
        yield report


@contextmanager
def _logs_above(console) -> Iterator[None]:
    """Route the root logger's records through `console` (same level and text) while the bar shows."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    saved = root.handlers[:]
    handler = RichHandler(console=console, show_time=False, show_level=False, show_path=False, markup=False)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


def _elapsed_column():
    """A rich column of the time since the command's display opened (a step's own task restarts its clock)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Elapsed(ProgressColumn):
        def __init__(self, began: float):
            super().__init__()
            self.began = began

        def render(self, task) -> Text:
            seconds = int(time.monotonic() - self.began)
            return Text(f"{seconds // 60}:{seconds % 60:02d}", style="progress.elapsed")

    return Elapsed
