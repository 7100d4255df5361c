"""An audit entry's ``before`` and ``after`` (JSON, kept as recorded) in words on the page, in
the reader's language: "percent 10% → 25%, tag B2a → B2b". The exports keep the JSON."""

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

register = template.Library()

# Keys by their name in words (the config's own first, as the controls describe a config); a
# key not named here reads as itself, its underscores as spaces.
NAMES = {
    "canary_percent": gettext_lazy("percent"),
    "canary_tag": gettext_lazy("tag"),
    "emergency_proxy": gettext_lazy("emergency stop"),
    "evidence": gettext_lazy("evidence digest"),
    "build": gettext_lazy("build"),
    "current_build": gettext_lazy("current build"),
    "deployment": gettext_lazy("deployment"),
    "email": gettext_lazy("email"),
    "kind": gettext_lazy("kind"),
    "language": gettext_lazy("language"),
    "may_approve": gettext_lazy("may approve"),
    "name": gettext_lazy("name"),
    "names": gettext_lazy("names"),
    "outcome": gettext_lazy("outcome"),
    "percent": gettext_lazy("percent"),
    "phase": gettext_lazy("phase"),
    "preflight": gettext_lazy("pre-flight"),
    "role": gettext_lazy("role"),
    "roles": gettext_lazy("roles"),
    "rules": gettext_lazy("rules"),
    "state": gettext_lazy("state"),
    "threshold": gettext_lazy("threshold"),
    "time_zone": gettext_lazy("time zone"),
    "user": gettext_lazy("user"),
    "value": gettext_lazy("value"),
    "version_id": gettext_lazy("version id"),
    "window": gettext_lazy("window"),
}
CONFIG_KEYS = ("canary_percent", "canary_tag", "emergency_proxy", "evidence")


def _value(key: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("on") if value else _("off")
    if isinstance(value, list | tuple):
        return ", ".join(_value(key, item) for item in value) or _("none")
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
    order = {key: position for position, key in enumerate(CONFIG_KEYS)}
    for key, value in sorted(values.items(), key=lambda item: order.get(item[0], len(order))):
        name = str(NAMES.get(key, key.replace("_", " ")))
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
        return _("was %(values)s") % {
            "values": ", ".join(f"{name} {_shown(value)}" for name, value in old.items())
        }
    parts = []
    for name in list(old) + [name for name in new if name not in old]:
        was = _shown(old[name]) if name in old else "—"
        now = _shown(new[name]) if name in new else "—"
        if was != now:
            parts.append(f"{name} {was} → {now}")
    return ", ".join(parts) or _("no change")


@register.simple_tag
def audit_change(entry) -> str:
    """``{% audit_change entry %}``: the entry's before → after in words."""
    if entry.before is None and entry.after is None:
        return ""
    return describe_change(entry.before, entry.after)
