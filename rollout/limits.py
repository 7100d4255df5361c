"""How long the texts people write may be: one place for the numbers, the form field, the model
validator and the database constraint that enforce them.

The audit trail keeps every reason and note for good and can never be pruned, so a text is as long
as its purpose needs and no longer:

- a reason or a note (a control, a drift decision, alert settings, a check-in, an approval, a
  withdrawal, an attestation): a few sentences, 1,000 characters;
- names of people on call or available: 500 characters;
- a signature's justification: a paragraph or two, 4,000 characters;
- a post-mortem section (root cause, fix plan, timeline): a document, 20,000 characters each.

The form says the limit when it is passed; the model's validator says the same for the admin; a
CHECK constraint on each text column makes the database refuse a longer one from anywhere else.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import BaseValidator
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.deconstruct import deconstructible

REASON = 1_000
NOTE = 1_000
NAMES = 500
JUSTIFICATION = 4_000
POST_MORTEM_SECTION = 20_000


@deconstructible
class MaxCharacters(BaseValidator):
    """ "At most 1,000 characters (you entered 1,234)." """

    message = "At most %(limit_value)s characters (you entered %(show_value)s)."
    code = "max_length"

    def __call__(self, value):
        entered = len(value)
        if entered > self.limit_value:
            raise ValidationError(
                self.message,
                code=self.code,
                params={"limit_value": f"{self.limit_value:,}", "show_value": f"{entered:,}"},
            )


class LimitedText(forms.CharField):
    """A text a person writes, at most ``limit`` characters (the browser is told too)."""

    def __init__(self, *, limit: int, **kwargs):
        super().__init__(max_length=limit, **kwargs)
        # Our validator in place of Django's, for a message that says both numbers.
        self.validators = [v for v in self.validators if v.code != "max_length"]
        self.validators.append(MaxCharacters(limit))

    def to_python(self, value):
        # A browser sends a textarea's line breaks as CRLF but counts them as one character
        # against maxlength: count them as the person sees them.
        value = super().to_python(value)
        return value.replace("\r\n", "\n")


def at_most(field: str, limit: int) -> models.CheckConstraint:
    """The database's own refusal of a text longer than ``limit``, for a model's Meta."""
    return models.CheckConstraint(
        condition=LessThanOrEqual(Length(field), limit), name=f"%(class)s_{field}_length"
    )


def cut(text: str, limit: int, why: str) -> str:
    """``text`` cut to at most ``limit`` characters, saying so at the end."""
    if len(text) <= limit:
        return text
    tail = f"\n… ({why})"
    return text[: limit - len(tail)] + tail
