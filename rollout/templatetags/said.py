"""A message kept beside an English text (``integrations.said``, ``preview_words.said``), said on
the page in its reader's language: ``{{ report.error_said|said:report.error }}``; the text it
kept when there is no message (a row from before they were kept)."""

from django import template

from ..services.preview_words import parts, words_text

register = template.Library()


@register.filter
def said(words, kept="") -> str:
    if not words:
        return kept or ""
    return words_text(parts(words), kept or "")
