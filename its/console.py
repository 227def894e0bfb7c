"""Terminal output helpers: progress bars only on a TTY, quiet otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["console", "print_json_line", "progress", "track"]

T = TypeVar("T")
console = Console(stderr=True)


def progress() -> Progress:
    """A rich Progress that renders only when stderr is a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(), console=console, disable=not sys.stderr.isatty(), transient=True,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on a TTY."""
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def print_json_line(obj: object) -> None:
    """Print one JSON object on its own line of stdout (the last line of eval/bench output)."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    sys.stdout.flush()
