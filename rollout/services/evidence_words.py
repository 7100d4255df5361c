"""The sentences of a phase's evidence, written from the figures the evidence keeps.

The evidence is frozen as JSON and its digest is what two people sign, so it may never depend on
who reads it: each criterion keeps its sentence (``detail``) in English with its times in UTC.
A page writes the sentence again when it shows it, from the same figures, in its reader's
language and time zone; a Markdown report in its team's language and in UTC. Both come from the
functions below, so the kept sentence and the shown one never say different things. A criterion
these functions do not know (evidence from an older version, a figure missing) is shown with the
sentence it kept.

The same holds for what changed between two evidence documents (a signature that no longer
counts says why): ``evidence.changes_between`` keeps the changes as facts, ``changes_words``
writes them.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from ..templatetags.times import in_words
from .preview_words import number, words_text

# What a yes and a no of each attested criterion say.
ATTESTED_WORDS = {
    "upload_flow": (
        gettext_noop("upload flow healthy"),
        gettext_noop("data loss / orphaned uploads"),
    ),
    "team_agrees": (
        gettext_noop("team agrees: stable"),
        gettext_noop("team concern: risk too high"),
    ),
}
INCIDENT_KINDS = {
    "emergency_stop": gettext_noop("emergency stop"),
    "rollback": gettext_noop("rollback"),
    "critical_alert": gettext_noop("critical alert"),
}
RESOLUTIONS = {"kept": gettext_noop("kept"), "restarted": gettext_noop("restarted")}


def criterion_words(criterion: dict, recommendation: dict) -> str:
    """A criterion's sentence in the active language and time zone; the sentence it kept when
    its figures do not say enough (evidence from an older version)."""
    try:
        return criterion_sentence(criterion, recommendation)
    except (KeyError, TypeError, ValueError, IndexError):
        return criterion.get("detail", "")


def criterion_sentence(criterion: dict, recommendation: dict) -> str:
    """The sentence of one criterion (``Criterion.as_dict()``) of ``recommendation`` (its
    ``thresholds`` and ``window`` figures), from its status and figures."""
    key, status = criterion["key"], criterion["status"]
    figures = criterion["figures"]
    write = SENTENCES.get(key)
    if write is None:
        if key in ATTESTED_WORDS:
            return _attestation(key, status, figures)
        raise KeyError(key)
    return write(status, figures, recommendation)


# --- numbers and moments -------------------------------------------------------------------------


def count(value) -> str:
    return number(f"{value:,}")


def shown(percent: float) -> str:
    """Two decimals, but a tiny rate that is not zero must not read as 0.00."""
    text = f"{percent:.2f}" if percent == 0 or abs(percent) >= 0.005 else f"{percent:.1g}"
    return number(text)


def confidence_words(confidence: float) -> str:
    return _("%(confidence)s%% CI") % {"confidence": number(f"{confidence * 100:g}")}


def _hours(figures: dict, counted_key: str, what: str) -> str:
    return what % {"above": figures["hours_above_nogo"], "counted": figures[counted_key]}


# --- traffic and errors --------------------------------------------------------------------------


def _native_traffic(status, figures, recommendation) -> str:
    words = {"requests": count(figures["native_requests"])}
    words["minimum"] = count(figures["min_native_requests"])
    if status == "fail":
        return _("too little native traffic: %(requests)s requests, need %(minimum)s") % words
    return _("native traffic %(requests)s requests ≥ %(minimum)s") % words


def _native_5xx(status, figures, recommendation) -> str:
    if status == "missing":
        return _("native 5xx rate unknown: no native requests")
    rate = figures["error_percent"]
    low, high = figures["interval_percent"]
    go, nogo = figures["go_max_error_percent"], figures["nogo_error_percent"]
    words = {
        "rate": shown(rate),
        "ci": confidence_words(figures["confidence"]),
        "low": shown(low),
        "high": shown(high),
        "go": number(str(go)),
        "nogo": number(str(nogo)),
        "hours": _hours(
            figures, "hours_with_traffic", _("%(above)s of %(counted)s hours with traffic")
        ),
    }
    words["stated"] = _("native 5xx %(rate)s%% (%(ci)s %(low)s–%(high)s%%)") % words
    if status == "pass":
        return _("%(stated)s < %(go)s%%") % words
    if status == "fail":
        return _("%(stated)s sustained above %(nogo)s%%: above it in %(hours)s") % words
    minimum = recommendation["thresholds"]["min_native_requests"]
    if rate < go and figures["requests"] < minimum:
        return _("%(stated)s: too little traffic to judge, the interval reaches %(go)s%%") % words
    if rate < go:
        return (
            _(
                "native 5xx %(rate)s%%, borderline: cannot tell whether it is under %(go)s%% "
                "(%(ci)s %(low)s–%(high)s%%)"
            )
            % words
        )
    if low > nogo:
        return _("%(stated)s above %(nogo)s%% but not sustained: only in %(hours)s") % words
    if rate > nogo:
        return _("%(stated)s above %(nogo)s%%, but not significantly") % words
    return _("%(stated)s, borderline: %(go)s–%(nogo)s%%") % words


def _native_vs_proxy_5xx(status, figures, recommendation) -> str:
    if status == "missing":
        native = recommendation["window"]["cohorts"]["native"]["requests"]
        return _("cannot compare 5xx rates: no %(cohort)s requests") % {
            "cohort": "proxy" if native else "native"
        }
    low, high = figures["interval_points"]
    words = {
        "native": shown(figures["native_error_percent"]),
        "proxy": shown(figures["proxy_error_percent"]),
        "difference": number(f"{figures['difference_points']:+.2f}"),
        "ci": confidence_words(figures["confidence"]),
        "low": number(f"{low:+.2f}"),
        "high": number(f"{high:+.2f}"),
    }
    words["stated"] = (
        _(
            "native 5xx %(native)s%% vs proxy %(proxy)s%%: %(difference)s points "
            "(%(ci)s %(low)s to %(high)s)"
        )
        % words
    )
    words["allowed"] = _("%(points)s points") % {
        "points": number(f"{figures['error_excess_points']:g}")
    }
    if status == "pass":
        return _("%(stated)s, at most %(allowed)s above proxy") % words
    if status == "fail":
        return (
            _("%(stated)s: native significantly worse than proxy, maybe by more than %(allowed)s")
            % words
        )
    return _("%(stated)s: cannot rule out native being more than %(allowed)s worse") % words


# --- latency -------------------------------------------------------------------------------------


def _native_p90(status, figures, recommendation) -> str:
    if status == "missing":
        return _("native p90 unknown: no native latencies")
    low, high = figures["interval_ms"]
    words = {
        "p90": number(f"{figures['p90_ms']:.0f}"),
        "ci": confidence_words(figures["confidence"]),
        "low": number(f"{low:.0f}"),
        "high": number(f"{high:.0f}"),
        "go": number(f"{figures['go_max_p90_ms']:g}"),
        "nogo": number(f"{figures['nogo_p90_ms']:g}"),
        "hours": _hours(
            figures,
            "hours_with_enough_traffic",
            _("%(above)s of %(counted)s hours with enough traffic"),
        ),
    }
    words["stated"] = _("native p90 %(p90)s ms (%(ci)s %(low)s–%(high)s ms)") % words
    if status == "pass":
        return _("%(stated)s < %(go)s ms") % words
    if status == "fail":
        return _("%(stated)s sustained above %(nogo)s ms: above it in %(hours)s") % words
    if figures["p90_ms"] > figures["nogo_p90_ms"]:
        return _("%(stated)s above %(nogo)s ms but not sustained: only in %(hours)s") % words
    return _("%(stated)s, borderline: %(go)s–%(nogo)s ms") % words


def _p90_vs_proxy(status, figures, recommendation) -> str:
    native, proxy = figures["ttfb_ms"]["native"]["p90"], figures["ttfb_ms"]["proxy"]["p90"]
    if status == "missing":
        return _("cannot compare p90: no %(cohort)s latencies") % {
            "cohort": "native" if native is None else "proxy"
        }
    words = {
        "native": number(f"{native:.0f}"),
        "proxy": number(f"{proxy:.0f}"),
        "excess": number(f"{figures['excess_percent']:+.1f}"),
        "fine": number(f"{figures['fine_percent']:g}"),
        "fail": number(f"{figures['fail_percent']:g}"),
    }
    words["stated"] = _("native p90 %(native)s ms vs proxy %(proxy)s ms: %(excess)s%%") % words
    if status == "pass":
        return _("%(stated)s, within %(fine)s%% of proxy") % words
    if status == "borderline":
        return _("%(stated)s, borderline: %(fine)s–%(fail)s%%") % words
    return _("%(stated)s, more than %(fail)s%% slower than proxy") % words


# --- incidents, logs, attestations, the build ----------------------------------------------------


def incident_kind(kind: str) -> str:
    return _(INCIDENT_KINDS[kind]) if kind in INCIDENT_KINDS else kind.replace("_", " ")


def incident_summary(item: dict) -> str:
    """An incident's summary in the active language, from the message and facts it keeps
    (``said``); the summary it kept when it keeps only that (evidence from an older version)."""
    if not item.get("said"):
        return item["summary"]
    return words_text([item["said"]], item["summary"])


def _incidents(status, figures, recommendation) -> str:
    if status == "pass":
        return _("no incidents in the window")
    kinds = ("emergency_stop", "rollback") if status == "fail" else ("critical_alert",)
    listed = [item for item in figures["incidents"] if item["kind"] in kinds]
    return ngettext(
        "%(count)s incident(s) in the window: %(listed)s",
        "%(count)s incident(s) in the window: %(listed)s",
        len(listed),
    ) % {
        "count": len(listed),
        "listed": "; ".join(
            _("%(kind)s at %(at)s: %(summary)s")
            % {
                "kind": incident_kind(item["kind"]),
                "at": in_words(item["at"]),
                "summary": incident_summary(item),
            }
            for item in listed
        ),
    }


def _logs(status, figures, recommendation) -> str:
    limit = _("%(minutes)s min") % {"minutes": figures["max_log_gap_minutes"]}
    if status == "fail":
        gaps = figures["long_gaps"]
        longest = gaps[0]
        return ngettext(
            "logs not delivering: %(count)s gap(s) longer than %(limit)s, the longest "
            "%(minutes)s min (%(start)s to %(end)s)",
            "logs not delivering: %(count)s gap(s) longer than %(limit)s, the longest "
            "%(minutes)s min (%(start)s to %(end)s)",
            len(gaps),
        ) % {
            "count": len(gaps),
            "limit": limit,
            "minutes": number(f"{longest['minutes']:.0f}"),
            "start": in_words(longest["start"]),
            "end": in_words(longest["end"]),
        }
    longest = figures["longest_gap_minutes"]
    if longest:
        return _("logs delivering: no gap longer than %(limit)s, the longest %(minutes)s min") % {
            "limit": limit,
            "minutes": number(f"{longest:.0f}"),
        }
    return _("logs delivering: no gap longer than %(limit)s") % {"limit": limit}


def _attestation(kind: str, status: str, figures: dict) -> str:
    healthy, unhealthy = ATTESTED_WORDS[kind]
    if status == "missing":
        return _("awaiting attestation: %(healthy)s?") % {"healthy": _(healthy)}
    words = {
        "said": _(healthy) if status == "pass" else _(unhealthy),
        "by": figures["by"],
        "at": in_words(figures["at"]),
        "note": figures["note"],
    }
    if figures["note"]:
        return _("%(said)s, attested by %(by)s at %(at)s: %(note)s") % words
    return _("%(said)s, attested by %(by)s at %(at)s") % words


def shift_words(shift: dict) -> str:
    """ "build changed at T (old → new)"."""
    return _("build changed at %(at)s (%(old)s → %(new)s)") % {
        "at": in_words(shift["at"]),
        "old": shift["old"],
        "new": shift["new"],
    }


def resolution_words(shift: dict) -> str:
    """ ", window kept by theo"; empty while no one chose."""
    if not shift["resolution"]:
        return ""
    resolution = shift["resolution"]
    return _(", window %(resolution)s by %(by)s") % {
        "resolution": _(RESOLUTIONS[resolution]) if resolution in RESOLUTIONS else resolution,
        "by": shift["by"],
    }


def _build(status, figures, recommendation) -> str:
    shifts = figures["build_changes"]
    if not shifts:
        return _("the build did not change in the window")
    if status == "fail":
        listed = "; ".join(shift_words(shift) for shift in shifts if not shift["resolution"])
        return _(
            "%(listed)s: restart the window from the new build, or keep it with a reason, "
            "before it can be GO"
        ) % {"listed": listed}
    return "; ".join(
        shift_words(shift)
        + resolution_words(shift)
        + (f": {shift['reason']}" if shift["reason"] else "")
        for shift in shifts
    )


SENTENCES = {
    "native_traffic": _native_traffic,
    "native_5xx": _native_5xx,
    "native_vs_proxy_5xx": _native_vs_proxy_5xx,
    "native_p90": _native_p90,
    "p90_vs_proxy": _p90_vs_proxy,
    "incidents": _incidents,
    "logs": _logs,
    "build": _build,
}


# --- what changed between two evidence documents -------------------------------------------------

# The figures a signer reads, by their key in the document, and how their values read.
COHORT_FIGURES = {
    "requests": (gettext_noop("requests"), "count"),
    "errors_5xx": (gettext_noop("5xx responses"), "count"),
    "error_percent": (gettext_noop("5xx rate"), "percent"),
}
WINDOW_FIGURES = {
    "requests": (gettext_noop("requests"), "count"),
    "unknown_cohort_requests": (gettext_noop("requests without a cohort"), "count"),
    "native_share_percent": (gettext_noop("native share"), "percent"),
    "r2_upload_errors": (gettext_noop("R2 upload errors"), "count"),
}
OTHER_LEAVES = {
    ("window", "start"): gettext_noop("window start"),
    ("window", "end"): gettext_noop("window end"),
    ("window", "complete"): gettext_noop("window complete"),
    ("phase", "build"): gettext_noop("phase build"),
}
ATTESTATION_NAMES = {
    "upload_flow": gettext_noop("upload flow healthy"),
    "team_agrees": gettext_noop("team agrees"),
}
RECORD_NAMES = {
    "incidents": gettext_noop("incident"),
    "stickiness": gettext_noop("stickiness probe"),
    "log_gaps": gettext_noop("log gap"),
    "build_changes": gettext_noop("build change"),
}
OUTCOMES = {"go": gettext_noop("GO"), "hold": gettext_noop("HOLD"), "no_go": gettext_noop("NO-GO")}


def changes_words(changes: list[dict]) -> str:
    """``evidence.changes_between`` in words: "native 5xx rate 0.42% → 0.61%; attestation
    'team agrees' added (yes by theo)"."""
    return "; ".join(_change_words(change) for change in changes) or _("nothing a signer sees")


def _change_words(change: dict) -> str:
    if "attestation" in change:
        return _attestation_change(change)
    if "record" in change:
        words = {
            "record": _(RECORD_NAMES.get(change["record"], change["record"])),
            "item": RECORD_WORDS[change["record"]](change["item"]),
        }
        if change["change"] == "added":
            return _("%(record)s added: %(item)s") % words
        return _("%(record)s no longer in the evidence: %(item)s") % words
    if "figure" in change:
        name, shown_as = _leaf_words(tuple(change["figure"]))
        return f"{name} {shown_as(change['before'])} → {shown_as(change['after'])}"
    return _("the recommendation's criteria changed")


def _attestation_change(change: dict) -> str:
    kind = change["attestation"]
    words = {
        "name": _(ATTESTATION_NAMES[kind]) if kind in ATTESTATION_NAMES else kind.replace("_", " "),
        "by": change.get("by", ""),
    }
    if change["change"] == "added":
        words["value"] = _yes_no(change["value"])
        return _("attestation '%(name)s' added (%(value)s by %(by)s)") % words
    if change["change"] == "removed":
        return _("attestation '%(name)s' removed") % words
    if change["change"] == "value":
        words.update(before=_yes_no(change["before"]), after=_yes_no(change["after"]))
        return _("attestation '%(name)s' %(before)s → %(after)s by %(by)s") % words
    words["note"] = change["note"]
    return _("attestation '%(name)s' given again by %(by)s: %(note)s") % words


def _leaf_words(path: tuple):
    """The name of one figure and how its values read."""
    forms = {"count": _count, "percent": _percent_of}
    if path[0] == "figures" and len(path) == 4 and path[1] == "cohorts":
        name, form = COHORT_FIGURES.get(path[3], (path[3].replace("_", " "), ""))
        return f"{path[2]} {_(name)}", forms.get(form, _plain)
    if path[0] == "figures" and len(path) == 5 and path[3] == "ttfb_ms":
        return f"{path[2]} {path[4]} TTFB", lambda value: _plain(value, " ms")
    if path[0] == "figures" and len(path) == 2 and path[1] in WINDOW_FIGURES:
        name, form = WINDOW_FIGURES[path[1]]
        return _(name), forms[form]
    if path[0] == "recommendation":
        return _(
            "recommendation"
        ), lambda value: _(OUTCOMES[value]) if value in OUTCOMES else _plain(value)
    if path[0] == "thresholds":
        return _("threshold %(name)s") % {"name": path[-1]}, _plain
    if path in OTHER_LEAVES:
        return _(OTHER_LEAVES[path]), _plain
    return " ".join(part.replace("_", " ") for part in path), _plain


def _count(value) -> str:
    return count(value) if isinstance(value, int) else _plain(value)


def _percent_of(value) -> str:
    return number(f"{value:g}%") if isinstance(value, int | float) else _plain(value)


def _plain(value, unit: str = "") -> str:
    if value is None:
        return _("none")
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, float):
        return number(f"{value:g}") + unit
    if isinstance(value, str):
        return in_words(value)
    return f"{value}{unit}"


def _yes_no(value) -> str:
    return _("yes") if value else _("no")


def _incident(item: dict) -> str:
    return _("%(kind)s at %(at)s (%(summary)s)") % {
        "kind": incident_kind(item["kind"]),
        "at": in_words(item["at"]),
        "summary": incident_summary(item),
    }


def _probe(item: dict) -> str:
    return f"v{item['version']} {item['change']}: {item['result']}"


def _shift(item: dict) -> str:
    return _("at %(at)s (%(old)s → %(new)s)") % {
        "at": in_words(item["at"]),
        "old": item["old"],
        "new": item["new"],
    } + resolution_words(item)


def _gap(item: list) -> str:
    return _("%(start)s to %(end)s") % {"start": in_words(item[0]), "end": in_words(item[1])}


RECORD_WORDS = {
    "incidents": _incident,
    "stickiness": _probe,
    "log_gaps": _gap,
    "build_changes": _shift,
}
