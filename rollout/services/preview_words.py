"""What the preview suite saw, kept as messages with their facts and said in the reader's language.

A check's note (what it saw) or reason (why it failed), and the run's restore, are kept twice:
as text in English for the record (``PreviewCheck.note`` / ``reason``, ``PreviewRun.restore_note``:
the API, the audit trail, exports) and as ``words`` — a list of parts, each either plain text
(the edge's own answers and the protocol judge's findings, which are technical and stay as they
are) or a message id with its parameters (``said``), which a page and a team's report say in their
language. A row from before the words were kept shows its text.
"""

from __future__ import annotations

from django.utils.formats import get_format
from django.utils.translation import gettext as _

from integrations.kv_value import CanarySettings

from ..team_language import for_the_record


def number(text: str) -> str:
    """A number written the Python way ("57,640", "0.28") in the reader's way ("57.640", "0,28")."""
    decimal, thousands = get_format("DECIMAL_SEPARATOR"), get_format("THOUSAND_SEPARATOR")
    return text.translate(str.maketrans({",": thousands, ".": decimal}))


def said(msgid: str, **params) -> dict:
    """A message (marked where it is written: ``said(gettext_noop("…"), …)``) and its
    parameters: text, numbers, ``decimal(…)``, ``config(…)`` or another ``said``."""
    return {"msgid": msgid, "params": params}


def decimal(value: float, form: str = "g") -> dict:
    """A number with a fraction, written in the reader's way ("0.1" / "0,1")."""
    return {"decimal": format(value, form)}


def config(settings: CanarySettings) -> dict:
    """A config, described in the reader's language ("10%, tag B2a")."""
    return {"config": settings.as_dict()}


def label(choice) -> dict:
    """A choice's label (``ConfigChange.State.FAILED``, say) as a message."""
    return said(for_the_record(str, choice.label))


def parts(words) -> list:
    """``words`` as a list of parts (a single text or message becomes a list of one)."""
    return list(words) if isinstance(words, list) else [words]


def words_text(words: list, kept: str = "") -> str:
    """The parts in the active language, one after the other; ``kept`` when there are none."""
    if not words:
        return kept
    try:
        return "".join(_part(part) for part in words)
    except (KeyError, TypeError, ValueError):
        return kept


def record(words) -> str:
    """The parts as the record keeps them: in English."""
    return for_the_record(words_text, parts(words))


def _part(part) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, list):  # a parameter made of parts (``integrations.said.joined``)
        return "".join(_part(item) for item in part)
    if isinstance(part, int | float):
        return str(part)
    if "msgid" in part:
        params = {name: _part(value) for name, value in part["params"].items()}
        return _(part["msgid"]) % params if params else _(part["msgid"])
    if "decimal" in part:
        return number(part["decimal"])
    if "config" in part:
        return CanarySettings(**part["config"]).describe()
    raise ValueError(part)
