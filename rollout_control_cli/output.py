"""How results are printed: tables and short sentences for people (rich), the API's own JSON
for scripts (`--json`). Progress and questions go to stderr so stdout stays the result.

rich is imported only when a table or progress is shown: it is about a tenth of a second of
the start of every command, and `stop --yes` prints one sentence."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

import click

from .words import _

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Into a file or a CI log rich would assume 80 columns and wrap every table; a log is wide.
LOG_WIDTH = 160


@cache
def console() -> Console:
    from rich.console import Console

    result = Console(highlight=False, soft_wrap=False)
    if not result.is_terminal and "COLUMNS" not in os.environ:
        result.width = LOG_WIDTH
    return result


@cache
def progress_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def say(text: str) -> None:
    click.echo(text)


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> Table:
    from rich.table import Table

    result = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*(text(cell) for cell in row))
    return result


def facts(title: str, rows: Iterable[Iterable[object]]) -> Table:
    """Label / value / note lines under a title, without a header row."""
    from rich.table import Table

    result = Table.grid(padding=(0, 2))
    result.title = title
    result.title_justify = "left"
    for _column in range(3):
        result.add_column(overflow="fold")
    for row in rows:
        result.add_row(*(text(cell) if cell != "" else "" for cell in row))
    return result


def show(*renderables: object) -> None:
    for renderable in renderables:
        console().print(renderable)


def text(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def when(moment: str | None) -> str:
    """An ISO 8601 moment from the API in this machine's time zone, to the second."""
    if not moment:
        return "—"
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        return moment
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def settings(values: dict | None) -> str:
    """A desired, KV or edge config in words: "25% B2b" or "emergency stop (all to proxy)"."""
    if not values:
        return "—"
    if values.get("emergency"):
        return _(
            "emergency stop (all to proxy; {percent}% {tag})",
            percent=values.get("percent"),
            tag=values.get("tag"),
        )
    return f"{values.get('percent')}% {values.get('tag') or ''}".strip()
