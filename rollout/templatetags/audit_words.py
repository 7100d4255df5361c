"""An audit entry's ``before`` and ``after`` (JSON, kept as recorded) in words on the page:
"percent 10% → 25%, tag B2a → B2b". The exports keep the JSON."""

from django import template

register = template.Library()

# Keys that read better under another name, and how their values are written.
NAMES = {
    "canary_percent": "percent",
    "canary_tag": "tag",
    "emergency_proxy": "emergency stop",
    "evidence": "evidence digest",
}


def _value(key: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(_value(key, item) for item in value) or "none"
    if key.endswith("percent") and isinstance(value, int | float):
        return f"{value}%"
    return " ".join(str(value).replace("_", " ").split()) if key == "state" else str(value)


def _flat(values, prefix="") -> dict:
    """``{"rules": {"5xx": {"threshold": 1}}}`` as ``{"rules 5xx threshold": 1}``."""
    if not isinstance(values, dict):
        return {prefix.strip() or "value": ("value", values)}
    flat = {}
    # PostgreSQL's jsonb keeps keys in its own order; the config's own keys come first, as the
    # controls describe a config.
    order = {key: position for position, key in enumerate(NAMES)}
    for key, value in sorted(values.items(), key=lambda item: order.get(item[0], len(order))):
        name = NAMES.get(key, key.replace("_", " "))
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{name} "))
        else:
            flat[f"{prefix}{name}"] = (key, value)
    return flat


def _shown(entry) -> tuple[str, str]:
    key, value = entry
    return _value(key, value)


def describe_change(before, after) -> str:
    """Only what changed when there is a before and an after; everything recorded otherwise."""
    old = _flat(before) if before is not None else {}
    new = _flat(after) if after is not None else {}
    if before is None:
        return ", ".join(f"{name} {_shown(value)}" for name, value in new.items())
    if after is None:
        return "was " + ", ".join(f"{name} {_shown(value)}" for name, value in old.items())
    parts = []
    for name in list(old) + [name for name in new if name not in old]:
        was = _shown(old[name]) if name in old else "—"
        now = _shown(new[name]) if name in new else "—"
        if was != now:
            parts.append(f"{name} {was} → {now}")
    return ", ".join(parts) or "no change"


@register.simple_tag
def audit_change(entry) -> str:
    """``{% audit_change entry %}``: the entry's before → after in words."""
    if entry.before is None and entry.after is None:
        return ""
    return describe_change(entry.before, entry.after)
