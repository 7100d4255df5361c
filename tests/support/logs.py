"""Capture what the console handler of config/settings.py would write, as parsed JSON lines."""

import contextlib
import io
import json
import logging

from config.log_format import ContextFilter, JsonLogFormatter


@contextlib.contextmanager
def json_log_lines(level=logging.INFO):
    """``with json_log_lines() as lines: ...; lines()`` — every record logged inside the block,
    formatted and filtered as LOG_FORMAT=json does, each line parsed (a line that is not one
    JSON object fails the test)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)

    def lines():
        handler.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    lines.raw = stream.getvalue
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
