"""The language a service's team reads. A Slack channel, a PagerDuty incident and a report are
shared by the whole team, so their words follow ``Service.language``, never the language of
whoever (or whichever rule) caused them; a page follows its viewer's.

A text kept as a record (an audit entry's detail, a sentence of a decision's frozen evidence, a
drift check's detail) speaks nobody's language in particular: ``for_the_record`` writes it in
English with its times in UTC, whoever caused it. Where a page shows such a text, it says it again
from the facts kept beside it, in its reader's language."""

import functools
from datetime import UTC

from django.utils import timezone, translation

RECORD_LANGUAGE = "en"


def for_the_record(write, *args, **kwargs) -> str:
    """``write(*args, **kwargs)`` as a record keeps it: in English, times in UTC."""
    with translation.override(RECORD_LANGUAGE), timezone.override(UTC):
        return write(*args, **kwargs)


def speaking(service):
    """``with speaking(service):`` builds its words in the service's language."""
    return translation.override(service.language)


def speaks_for(environment_of):
    """Decorates a function that builds a message about an environment: ``environment_of`` gets
    the function's arguments and names the environment whose service's language it speaks."""

    def decorate(build):
        @functools.wraps(build)
        def built(*args, **kwargs):
            with speaking(environment_of(*args, **kwargs).service):
                return build(*args, **kwargs)

        return built

    return decorate
