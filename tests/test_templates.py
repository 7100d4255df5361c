"""What every template must do, read from the template files themselves."""

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def templates() -> list[tuple[str, str]]:
    found = [
        (str(path.relative_to(TEMPLATES)), path.read_text()) for path in TEMPLATES.rglob("*.html")
    ]
    assert len(found) > 40
    return sorted(found)


def test_every_table_reflows_on_a_phone():
    """A new table goes inside ``{% reflow %}`` (rollout/templatetags/tables.py): the on-call
    engineer reads it on a phone."""
    unwrapped = [
        name
        for name, text in templates()
        if "<table" in re.sub(r"{% reflow %}.*?{% endreflow %}", "", text, flags=re.S)
    ]
    assert not unwrapped, f"tables outside {{% reflow %}}: {unwrapped}"


def test_no_short_comment_spans_lines():
    """Django shows a ``{# … #}`` that spans lines on the page as it is; ``{% comment %}`` is the
    one for several lines."""
    shown = [name for name, text in templates() if re.search(r"{#(?:(?!#}).)*\n", text)]
    assert not shown, f"comments shown on the page: {shown}"
