"""What a drift check found, in words. The check keeps its findings as facts
(``DriftState.findings``, ``DriftEvent.findings``: what KV and the edge held, which version, which
error) and its ``detail`` in English for the record; a page says the findings in its reader's
language, a row from before the facts were kept shows its ``detail``."""

from django.utils.translation import gettext as _

from integrations.kv_value import CanarySettings
from rollout.services.preview_words import words_text


def findings_words(findings: list[dict], kept: str = "") -> str:
    """The findings in the active language, joined by "; "; ``kept`` when there are none."""
    if not findings:
        return kept
    try:
        return "; ".join(_finding(finding) for finding in findings)
    except (KeyError, TypeError, ValueError):
        return kept


def kv_facts(raw: bytes | None, settings: CanarySettings | None) -> dict:
    """What KV held, as a finding keeps it."""
    if raw is None:
        return {"missing": True}
    if settings is None:
        return {"invalid": True}
    return {"settings": settings.as_dict()}


def kv_words(kv: dict) -> str:
    if kv.get("missing"):
        return _("nothing (the key is missing)")
    if kv.get("invalid"):
        return _("a value that is not a valid config")
    return CanarySettings(**kv["settings"]).describe()


def edge_words(canary: dict) -> str:
    if not canary:
        return _("no canary block")
    if canary.get("emergency_proxy") is True:
        return _("EMERGENCY, tag %(tag)s") % {"tag": canary.get("tag")}
    return _("%(percent)s%%, tag %(tag)s") % {
        "percent": canary.get("percent"),
        "tag": canary.get("tag"),
    }


def _finding(finding: dict) -> str:
    kind = finding["kind"]
    if kind == "kv_unreadable":
        return _("KV could not be read: %(error)s") % finding
    if kind == "write_failed":
        return _("KV holds %(kv)s; the write of version %(version)s failed: %(error)s") % {
            **finding,
            "kv": kv_words(finding["kv"]),
        }
    if kind == "late_write":
        return late_write_words(finding["late"], finding["desired"])
    if kind == "external":
        return _(
            "KV holds %(kv)s, desired is %(desired)s (version %(version)s); it was changed "
            "outside the dashboard"
        ) % {
            "kv": kv_words(finding["kv"]),
            "desired": CanarySettings(**finding["desired"]).describe(),
            "version": finding["version"],
        }
    if kind == "edge_unreadable":
        error = words_text([finding.get("error_said") or finding["error"]], finding["error"])
        return _("the edge could not be read: %(error)s") % {"error": error}
    if kind == "edge_behind":
        return _(
            "the edge reports %(edge)s, KV holds %(kv)s since %(waited)ss (allowance "
            "%(allowance)ss)"
        ) % {
            "edge": edge_words(finding["edge"]),
            "kv": CanarySettings(**finding["kv"]).describe(),
            "waited": finding["waited"],
            "allowance": finding["allowance"],
        }
    raise KeyError(kind)


def late_write_words(late: int, desired: int) -> str:
    return _(
        "KV held version %(late)s's settings again: its write that got no answer landed after "
        "version %(desired)s was written; re-applying version %(desired)s"
    ) % {"late": late, "desired": desired}
