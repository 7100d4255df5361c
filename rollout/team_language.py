"""The language a service's team reads. A Slack channel, a PagerDuty incident and a report are
shared by the whole team, so their words follow ``Service.language``, never the language of
whoever (or whichever rule) caused them; a page follows its viewer's."""

import functools

from django.utils import translation


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
