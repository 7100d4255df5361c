"""The Workers KV ``config`` value: the JSON document the edge worker reads.

Contract (docs/contracts.md): ``canary_percent`` (int 0–100), ``canary_tag`` (str),
``emergency_proxy`` (bool), ``last_updated`` (UTC, second precision, ``Z``). Keys we do not own
must survive a write, so a write is always read → merge → write.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.translation import gettext as _

OWNED_KEYS = ("canary_percent", "canary_tag", "emergency_proxy")


class InvalidKVValue(ValueError):
    """The stored value is not a JSON object we can merge into."""


@dataclass(frozen=True)
class CanarySettings:
    """The three settings the dashboard owns; everything else in the value is left alone."""

    canary_percent: int
    canary_tag: str
    emergency_proxy: bool

    def as_dict(self) -> dict:
        return {
            "canary_percent": self.canary_percent,
            "canary_tag": self.canary_tag,
            "emergency_proxy": self.emergency_proxy,
        }

    def describe(self) -> str:
        if self.emergency_proxy:
            return _("EMERGENCY (100%% proxy), tag %(tag)s") % {"tag": self.canary_tag}
        return _("%(percent)s%%, tag %(tag)s") % {
            "percent": self.canary_percent,
            "tag": self.canary_tag,
        }


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_object(raw: bytes | str | None) -> dict:
    """The stored value as a dict; ``{}`` when the key is missing.

    Raises InvalidKVValue when it is not a JSON object (someone wrote garbage by hand).
    """
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidKVValue("the stored value is not UTF-8 text") from exc
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidKVValue(f"the stored value is not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(value, dict):
        raise InvalidKVValue(f"the stored value is JSON but not an object ({type(value).__name__})")
    return value


def read_settings(raw: bytes | str | None) -> CanarySettings | None:
    """The owned settings of a stored value, or None when they are missing or mistyped."""
    try:
        value = parse_object(raw)
    except InvalidKVValue:
        return None
    percent = value.get("canary_percent")
    tag = value.get("canary_tag")
    emergency = value.get("emergency_proxy")
    # bool is a subclass of int: true must not read as 1%.
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        return None
    if not isinstance(tag, str) or not isinstance(emergency, bool):
        return None
    return CanarySettings(percent, tag, emergency)


def merge(existing_raw: bytes | str | None, desired: CanarySettings, now: datetime) -> str:
    """The value to write: the existing object with our keys replaced and ``last_updated`` set.

    A stored value that is not a JSON object cannot be merged; the caller keeps a copy of it
    and writes a fresh object (``merge(None, …)``).
    """
    value = parse_object(existing_raw)
    value.update(desired.as_dict())
    value["last_updated"] = format_timestamp(now)
    return json.dumps(value, separators=(",", ":"))
