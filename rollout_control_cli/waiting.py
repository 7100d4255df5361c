"""Long waits: poll until something is finished, showing what it is at — a spinner line that
updates in place on a terminal, one line on stderr per new state elsewhere (CI logs)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .client import ApiError
from .errors import CliError
from .output import progress_console
from .words import _


def read_through_throttling(read: Callable[[], dict]) -> dict:
    """A read that waits out 429 answers (the API limits calls per token) instead of failing."""
    while True:
        try:
            return read()
        except ApiError as error:
            if error.status != 429:
                raise
            time.sleep(error.retry_after or 5)


def poll(
    read: Callable[[], dict],
    *,
    finished: Callable[[dict], bool],
    describe: Callable[[dict], str],
    timeout: float,
    interval: float,
    what: str,
) -> dict:
    started = time.monotonic()
    terminal = progress_console().is_terminal
    last = None
    status = progress_console().status("") if terminal else None
    if status:
        status.start()
    try:
        while True:
            item = read_through_throttling(read)
            line = describe(item)
            if terminal:
                status.update(f"{line}  ({time.monotonic() - started:.0f} s)")
            elif line != last:
                progress_console().print(line, markup=False)
            last = line
            if finished(item):
                return item
            if time.monotonic() - started > timeout:
                raise CliError(
                    _(
                        "{what} is still {state} after {seconds} s; stopped waiting",
                        what=what,
                        state=line,
                        seconds=f"{timeout:g}",
                    )
                )
            time.sleep(interval)
    finally:
        if status:
            status.stop()
