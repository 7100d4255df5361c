"""A role by its name in the reader's language: ``{{ group.name|role_name }}`` ("tech lead" reads
"Tech Lead" in German). A group that is no role of ours keeps its own name."""

from django import template

from .. import roles

register = template.Library()


@register.filter
def role_name(group_name: str) -> str:
    return roles.NAMES.get(group_name, group_name)
