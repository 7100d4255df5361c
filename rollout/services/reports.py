"""The report of one phase window (the runbook's GO_NO_GO_PROD_<tag>.md) and of a whole rollout,
from recorded facts only: a decision's frozen evidence once one is in effect, else the evidence
as it stands, and the signatures, changes, incidents and post-mortems on record. The whole-rollout
report is the phase reports in order (the same building blocks, one level down) with the
rollout's progress, its config changes and every decision with its signers around them."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import ConfigChange, Decision, PhaseRun, PostMortem, Rollout, Signature
from . import evidence, evidence_words, phases


def phase_report(run: PhaseRun) -> dict:
    effective = run.decisions.filter(state=Decision.State.EFFECTIVE).first()
    if effective is not None:
        document = effective.evidence
        signatures = list(
            effective.signatures.filter(invalidated_at__isnull=True).select_related("signer")
        )
    else:
        document = evidence.build(run, timezone.now()).document if run.in_effect_at else None
        signatures = []
    return {
        "run": run,
        "rollout": run.rollout,
        "decision": effective,
        "document": document,
        "rows": metric_rows(document) if document else [],
        "signatures": signatures,
        "build": phases.build_of(run),
        "actual": phases.actual_percent(run),
        "generated_at": timezone.now(),
    }


def metric_rows(document: dict) -> list[dict]:
    """Native / proxy / target / status for the 5xx rate and p50, p90, p99."""
    cohorts = document["figures"]["cohorts"]
    native, proxy = cohorts["native"], cohorts["proxy"]
    thresholds = document["thresholds"]
    rows = [
        _row(
            _("Error rate (5xx)"),
            native["error_percent"],
            proxy["error_percent"],
            thresholds["go_max_error_percent"],
            "%",
        )
    ]
    # p50 and p99 targets are the runbook's, informational; 5xx and p90 are the GO thresholds.
    for key, target in (
        ("p50", thresholds["target_p50_ms"]),
        ("p90", thresholds["go_max_p90_ms"]),
        ("p99", thresholds["target_p99_ms"]),
    ):
        rows.append(
            _row(
                _("Latency %(key)s") % {"key": key},
                native["ttfb_ms"][key],
                proxy["ttfb_ms"][key],
                target,
                _(" ms"),
            )
        )
    return rows


def _row(label, native, proxy, target, unit) -> dict:
    if native is None:
        status = _("NO DATA")
    else:
        status = "PASS" if native < target else "FAIL"
    return {
        "label": label,
        "native": _value(native, unit),
        "proxy": _value(proxy, unit),
        "target": f"<{target:g}{unit.strip() and unit}",
        "status": status,
    }


def _value(value, unit) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}%" if unit == "%" else f"{value:.0f}{unit}"


def heading(title: str) -> list[str]:
    """The lines of a Markdown report's section heading, blank lines around it."""
    return ["", f"## {title}", ""]


def markdown(report: dict) -> str:
    run: PhaseRun = report["run"]
    document = report["document"]
    decision: Decision | None = report["decision"]
    environment = run.rollout.environment
    title = _("# %(name)s %(name2)s: phase %(tag)s ") % {
        "name": environment.service.name,
        "name2": environment.name,
        "tag": run.phase.tag,
    }
    title += f"({run.phase.percent}%)"
    if run.window_number > 1:
        title += _(", window %(window_number)s") % {"window_number": run.window_number}
    lines = [title, ""]
    if document is None:
        lines += [_("The phase's config has not taken effect yet: nothing to report."), ""]
        return "\n".join(lines)
    window = document["window"]
    figures = document["figures"]
    cohorts = figures["cohorts"]
    lines += [
        _("**Period:** %(start)s – %(end)s") % {"start": window["start"], "end": window["end"]}
        + ("" if window["complete"] else _(" (window still running)")),
        _("**Logs received through:** %(or)s") % {"or": window.get("logs_through") or "—"}
        + (
            _(" (the window's last logs had not all arrived)")
            if window["complete"] and window.get("logs_complete") is False
            else ""
        ),
        _("**Build:** %(or)s") % {"or": report["build"] or "—"},
        _("**Percent:** %(actual)s") % {"actual": _percent_words(run, report["actual"])},
        _(
            "**Traffic:** %(requests)s requests (%(requests2)s native, "
            "%(requests3)s proxy; native share %(figures)s)"
        )
        % {
            "requests": format(figures["requests"], ","),
            "requests2": format(cohorts["native"]["requests"], ","),
            "requests3": format(cohorts["proxy"]["requests"], ","),
            "figures": _share(figures),
        },
        _("**5xx:** %(errors_5xx)s native, %(errors_5xx2)s proxy")
        % {
            "errors_5xx": format(cohorts["native"]["errors_5xx"], ","),
            "errors_5xx2": format(cohorts["proxy"]["errors_5xx"], ","),
        },
        *heading(_("Metrics Summary")),
        _("| Metric | Native | Proxy | Target | Status |"),
        "|--------|--------|-------|--------|--------|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['label']} | {row['native']} | {row['proxy']} | {row['target']} | "
            f"{row['status']} |"
        )
    lines += heading(_("Criteria"))
    for criterion in document["recommendation"]["criteria"]:
        status, label = _(criterion["status"]).upper(), _(criterion["label"])
        if criterion.get("rule") == "team":
            label += _(" (team's own rule, not in the runbook)")
        words = evidence_words.criterion_words(criterion, document["recommendation"])
        lines.append(f"- {status}: {label} — {words}")
    lines += heading(_("Incidents"))
    lines += [
        f"- {item['at']} {evidence_words.incident_kind(item['kind'])}: "
        f"{evidence_words.incident_summary(item)}"
        for item in document["incidents"]
    ]
    if not document["incidents"]:
        lines.append(_("None."))
    shifts = document.get("build_changes", [])
    if shifts:
        lines += ["", _("## Build changes"), ""]
        lines += [f"- {_shift_words(shift)}" for shift in shifts]
    if document["log_gaps"]:
        gaps = ", ".join(f"{start} – {end}" for start, end in document["log_gaps"])
        lines += ["", _("Log delivery gaps: %(gaps)s") % {"gaps": gaps}]
    lines += heading(_("Decision"))
    recommended = document["recommendation"]["outcome"]
    if decision is None:
        lines.append(
            _("No decision in effect yet. Recommendation: **%(label)s**.")
            % {"label": Decision.Outcome(recommended).label}
        )
    else:
        lines.append(
            _("**%(outcome)s** (recommendation: %(label)s), in effect %(effective_at)s UTC")
            % {
                "outcome": decision.get_outcome_display(),
                "label": Decision.Outcome(recommended).label,
                "effective_at": format(decision.effective_at, "%Y-%m-%d %H:%M"),
            }
            + (_(", signed before the window ended") if decision.early else "")
        )
        if decision.justification:
            lines += [
                "",
                _("Justification: %(justification)s") % {"justification": decision.justification},
            ]
        lines += heading(_("Sign-Off"))
        for signature in report["signatures"]:
            lines.append(
                _("- %(role)s: %(signature)s, %(signed_at)s UTC")
                % {
                    "role": signature.get_role_display(),
                    "signature": _name(signature),
                    "signed_at": format(signature.signed_at, "%Y-%m-%d %H:%M"),
                }
                + (f" — {signature.justification}" if signature.justification else "")
            )
        lines += [
            "",
            _("Evidence digest: `%(evidence_digest)s`")
            % {"evidence_digest": decision.evidence_digest},
        ]
    lines.append("")
    return "\n".join(lines)


def _shift_words(shift: dict) -> str:
    """ "build changed at T (old → new)", and what a person chose for it."""
    at = datetime.fromisoformat(shift["at"])
    words = _("build changed at %(UTC)s (%(old)s → %(new)s)") % {
        "UTC": _utc(at.astimezone(UTC)),
        "old": shift["old"],
        "new": shift["new"],
    }
    if not shift["resolution"]:
        return words + _(": waiting for a person to restart or keep the window")
    words += _(": window %(resolution)s by %(by)s") % {
        "resolution": shift["resolution"],
        "by": shift["by"],
    }
    return words + (f" — {shift['reason']}" if shift["reason"] else "")


def _share(figures: dict) -> str:
    share = figures.get("native_share_percent")
    return "—" if share is None else f"{share:.1f}%"


def _name(signature: Signature) -> str:
    signer = signature.signer
    full = signer.get_full_name() if hasattr(signer, "get_full_name") else ""
    return f"{full} ({signer.get_username()})" if full else signer.get_username()


def _percent_words(run: PhaseRun, actual) -> str:
    """ "plan 25%, actually 5% since … (lowered)", or the plan's percent when they agree."""
    if actual is None:
        return f"{run.phase.percent}%"
    since = _(" since %(since)s") % {"since": _utc(actual.since)} if actual.since else ""
    return _("plan %(plan)s%%, actually %(actual)s%%%(since)s (%(why)s)") % {
        "plan": actual.plan,
        "actual": actual.actual,
        "since": since,
        "why": actual.why,
    }


def _utc(moment) -> str:
    return _("%(moment)s UTC") % {"moment": format(moment, "%Y-%m-%d %H:%M")}


# --- the whole rollout ---------------------------------------------------------------------------


def rollout_report(rollout: Rollout) -> dict:
    runs = list(rollout.phase_runs.select_related("phase", "rollout__environment__service"))
    phases.as_of(timezone.now(), rollout, runs)
    decisions = (
        Decision.objects.filter(phase_run__rollout=rollout)
        .exclude(state=Decision.State.WITHDRAWN)
        .select_related("phase_run__phase", "created_by")
        .prefetch_related("signatures__signer")
        .order_by("created_at", "id")
    )
    end = rollout.finished_at or timezone.now()
    return {
        "rollout": rollout,
        "progress": phases.progress(rollout, runs),
        "phase_reports": [phase_report(run) for run in runs],
        "changes": list(
            ConfigChange.objects.filter(
                environment_id=rollout.environment_id,
                requested_at__gte=rollout.created_at,
                requested_at__lte=end,
            ).order_by("requested_at", "id")
        ),
        "decisions": list(decisions),
        "post_mortems": list(
            PostMortem.objects.filter(decision__phase_run__rollout=rollout).select_related(
                "decision__phase_run__phase", "owner"
            )
        ),
        "generated_at": timezone.now(),
    }


def rollout_markdown(report: dict) -> str:
    rollout: Rollout = report["rollout"]
    environment = rollout.environment
    lines = [
        _("# %(name)s %(name2)s: rollout of %(or)s")
        % {"name": environment.service.name, "name2": environment.name, "or": rollout.build or "—"},
        "",
        _("**State:** %(state)s · created %(created_at)s")
        % {"state": rollout.get_state_display(), "created_at": _utc(rollout.created_at)}
        + (
            _(" · finished %(finished_at)s") % {"finished_at": _utc(rollout.finished_at)}
            if rollout.finished_at
            else ""
        ),
        *heading(_("Progress")),
    ]
    for step in report["progress"]:
        lines.append(f"- {step.phase.tag} ({step.phase.percent}%): {_step_words(step)}")
    lines += bullets(_("Config changes"), report["changes"], _change_words)
    lines += bullets(_("Decisions"), report["decisions"], _decision_words)
    lines += bullets(_("Post-mortems"), report["post_mortems"], _post_mortem_words)
    lines.append("")
    for phase in report["phase_reports"]:
        # Each phase's own report, one heading level down.
        for line in markdown(phase).split("\n"):
            lines.append(f"#{line}" if line.startswith("#") else line)
    return "\n".join(lines)


def bullets(title: str, items, words) -> list[str]:
    """A report's section listing ``items``, one bullet each (``words(item)``), or "None."."""
    return heading(title) + ([f"- {words(item)}" for item in items] or [_("None.")])


def _change_words(change: ConfigChange) -> str:
    return _(
        "%(requested_at)s v%(version)s %(kind)s by %(actor_label)s (%(state)s): %(reason)s"
    ) % {
        "requested_at": _utc(change.requested_at),
        "version": change.version,
        "kind": change.get_kind_display(),
        "actor_label": change.actor_label,
        "state": change.get_state_display(),
        "reason": change.reason,
    }


def _decision_words(decision: Decision) -> str:
    signers = ", ".join(
        f"{signature.get_role_display()} {_name(signature)}"
        + (_(" (voided)") if signature.invalidated_at else "")
        for signature in decision.signatures.all()
    )
    return _("%(phase_run)s: **%(outcome)s** (%(state)s), signed by %(yet)s") % {
        "phase_run": decision.phase_run,
        "outcome": decision.get_outcome_display(),
        "state": decision.get_state_display(),
        "yet": signers or _("nobody yet"),
    }


def _post_mortem_words(post_mortem: PostMortem) -> str:
    return f"{post_mortem.decision.phase_run}: {post_mortem.root_cause or _('(open)')}"


def _step_words(step) -> str:
    if step.state == "done":
        return _("done, %(outcome)s") % {"outcome": step.outcome}
    if step.state == "current":
        run = step.run
        if run.state == PhaseRun.State.DECISION_DUE:
            return _("current, decision due since %(window_ends_at)s") % {
                "window_ends_at": _utc(run.window_ends_at)
            }
        if run.window_ends_at:
            return _("current, window ends %(window_ends_at)s") % {
                "window_ends_at": _utc(run.window_ends_at)
            }
        return _("current, waiting for its config to take effect")
    return {"next": _("next"), "later": _("later"), "not_reached": _("not reached")}[step.state]
