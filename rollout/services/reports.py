"""The report of one phase window (the runbook's GO_NO_GO_PROD_<tag>.md), from recorded facts
only: the decision's frozen evidence once one is in effect, else the evidence as it stands, and
the signatures and incidents on record."""

from __future__ import annotations

from django.utils import timezone

from ..models import Decision, PhaseRun, Signature
from . import evidence


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
        "generated_at": timezone.now(),
    }


def metric_rows(document: dict) -> list[dict]:
    """Native / proxy / target / status for the 5xx rate and p50, p90, p99."""
    cohorts = document["figures"]["cohorts"]
    native, proxy = cohorts["native"], cohorts["proxy"]
    thresholds = document["thresholds"]
    rows = [
        _row(
            "Error rate (5xx)",
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
                f"Latency {key}",
                native["ttfb_ms"][key],
                proxy["ttfb_ms"][key],
                target,
                " ms",
            )
        )
    return rows


def _row(label, native, proxy, target, unit) -> dict:
    if native is None:
        status = "NO DATA"
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


def markdown(report: dict) -> str:
    run: PhaseRun = report["run"]
    document = report["document"]
    decision: Decision | None = report["decision"]
    environment = run.rollout.environment
    title = f"# {environment.service.name} {environment.name}: phase {run.phase.tag} "
    title += f"({run.phase.percent}%)"
    if run.window_number > 1:
        title += f", window {run.window_number}"
    lines = [title, ""]
    if document is None:
        lines += ["The phase's config has not taken effect yet: nothing to report.", ""]
        return "\n".join(lines)
    window = document["window"]
    figures = document["figures"]
    cohorts = figures["cohorts"]
    lines += [
        f"**Period:** {window['start']} – {window['end']}"
        + ("" if window["complete"] else " (window still running)"),
        f"**Logs received through:** {window.get('logs_through') or '—'}"
        + (
            " (the window's last logs had not all arrived)"
            if window["complete"] and window.get("logs_complete") is False
            else ""
        ),
        f"**Traffic:** {figures['requests']:,} requests "
        f"({cohorts['native']['requests']:,} native, {cohorts['proxy']['requests']:,} proxy; "
        f"native share {_share(figures)})",
        "",
        "## Metrics Summary",
        "",
        "| Metric | Native | Proxy | Target | Status |",
        "|--------|--------|-------|--------|--------|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['label']} | {row['native']} | {row['proxy']} | {row['target']} | "
            f"{row['status']} |"
        )
    lines += ["", "## Criteria", ""]
    for criterion in document["recommendation"]["criteria"]:
        status, label = criterion["status"].upper(), criterion["label"]
        if criterion.get("rule") == "team":
            label += " (team's own rule, not in the runbook)"
        lines.append(f"- {status}: {label} — {criterion['detail']}")
    lines += ["", "## Incidents", ""]
    lines += [f"- {item['at']} {item['kind']}: {item['summary']}" for item in document["incidents"]]
    if not document["incidents"]:
        lines.append("None.")
    if document["log_gaps"]:
        gaps = ", ".join(f"{start} – {end}" for start, end in document["log_gaps"])
        lines += ["", f"Log delivery gaps: {gaps}"]
    lines += ["", "## Decision", ""]
    recommended = document["recommendation"]["outcome"]
    if decision is None:
        lines.append(
            f"No decision in effect yet. Recommendation: **{Decision.Outcome(recommended).label}**."
        )
    else:
        lines.append(
            f"**{decision.get_outcome_display()}** (recommendation: "
            f"{Decision.Outcome(recommended).label}), in effect "
            f"{decision.effective_at:%Y-%m-%d %H:%M} UTC"
            + (", signed before the window ended" if decision.early else "")
        )
        if decision.justification:
            lines += ["", f"Justification: {decision.justification}"]
        lines += ["", "## Sign-Off", ""]
        for signature in report["signatures"]:
            lines.append(
                f"- {signature.get_role_display()}: {_name(signature)}, "
                f"{signature.signed_at:%Y-%m-%d %H:%M} UTC"
                + (f" — {signature.justification}" if signature.justification else "")
            )
        lines += ["", f"Evidence digest: `{decision.evidence_digest}`"]
    lines.append("")
    return "\n".join(lines)


def _share(figures: dict) -> str:
    share = figures.get("native_share_percent")
    return "—" if share is None else f"{share:.1f}%"


def _name(signature: Signature) -> str:
    signer = signature.signer
    full = signer.get_full_name() if hasattr(signer, "get_full_name") else ""
    return f"{full} ({signer.get_username()})" if full else signer.get_username()
