from django import template

register = template.Library()


@register.filter
def percent(share, digits=1):
    """A share within [0, 1] as a percentage: 0.0312 → "3.1%"."""
    if share is None or share == "":
        return "–"
    return f"{float(share) * 100:.{int(digits)}f}%"


@register.filter
def component_state(value):
    """ "ok", "error" or "unknown" for a health component's reported text."""
    if value == "ok":
        return "ok"
    if isinstance(value, str) and value.startswith("error:"):
        return "error"
    return "unknown"
