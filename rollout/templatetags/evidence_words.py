"""A phase's evidence in the reader's language and time zone (rollout/services/evidence_words.py):
``{{ criterion|criterion_words:recommendation }}``, ``{{ item.kind|incident_kind }}``,
``{{ item|incident_summary }}`` and ``{{ signature|no_longer_counts }}``."""

from django import template

from ..services import evidence_words
from ..services.signoff import invalidation_words

register = template.Library()


@register.filter
def criterion_words(criterion: dict, recommendation: dict) -> str:
    return evidence_words.criterion_words(criterion, recommendation)


@register.filter
def incident_kind(kind: str) -> str:
    return evidence_words.incident_kind(kind)


@register.filter
def incident_summary(item: dict) -> str:
    return evidence_words.incident_summary(item)


@register.filter
def no_longer_counts(signature) -> str:
    """Why a signature no longer counts."""
    return invalidation_words(signature.invalidated_because, signature.invalidated_reason)
