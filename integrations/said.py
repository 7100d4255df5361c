"""A sentence we write about what an outside system answered, kept twice: as English text for
the record, and as its message id and parameters, which a page says again in its reader's
language (``rollout/services/preview_words.py`` reads the same shape: ``{"msgid", "params"}``).

``Said`` is the English text itself (a ``str``), so whoever compares, joins or stores it as text
keeps working; ``words_of`` gives what a row keeps beside it. What the system sent (a header, a
value, an exception's message) is a parameter and stays as it was sent.
"""

from __future__ import annotations


class Said(str):
    """``Said(gettext_noop("HTTP %(status)s"), status=503)``: "HTTP 503", and its message."""

    msgid: str
    params: dict

    def __new__(cls, msgid: str, **params):
        text = {k: "".join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}
        said = super().__new__(cls, msgid % text if params else msgid)
        said.msgid, said.params = msgid, params
        return said

    def words(self) -> dict:
        return {"msgid": self.msgid, "params": {k: words_of(v) for k, v in self.params.items()}}


def words_of(value):
    """What a row keeps of ``value``: a ``Said``'s message, a list's items, anything else as it is
    (a text from before, or what an outside system sent)."""
    if isinstance(value, Said):
        return value.words()
    if isinstance(value, list | tuple):
        return [words_of(item) for item in value]
    return value


def joined(items: list, separator: str = "; ") -> list:
    """Texts and sentences one after the other, ``separator`` between them: a parameter that
    reads "a; b" in English and says each part in the reader's language."""
    found = []
    for item in items:
        found += [separator, item] if found else [item]
    return found
