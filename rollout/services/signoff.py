"""Signing GO / HOLD / NO-GO, and what a decision does once both signatures are on it.

The rules, in the order ``sign`` checks them:
- the signer is a person, not a service account;
- the signer signs in a role they hold (tech lead or DevOps; an admin may fill either) —
  otherwise 403, like a missing permission;
- the window has ended, unless the outcome is NO-GO (stopping early is always allowed);
- the evidence the signer saw (its digest, posted with the form) is the evidence now: a signer
  never signs figures they did not see;
- the open decision, if any, is for the same outcome (otherwise it must be withdrawn first);
  if its evidence changed since its first signature, that signature is invalidated and the
  page says why;
- GO is refused while the emergency stop is active, or while a new Worker build that went live
  inside the window waits for a person to restart or keep the window;
- signing against the recommendation needs a written justification;
- one signature per person and per role (also database constraints): two different people.

When a tech lead and a DevOps engineer have both signed, the decision takes effect: NO-GO rolls
back to 0% at once and opens a post-mortem; HOLD opens a new window of the same phase; GO starts
the next phase through the pre-flight (production) with the first signer as the approval, or
completes the rollout after the last phase.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .. import limits, roles
from ..models import (
    AuditEntry,
    Decision,
    DesiredConfig,
    Phase,
    PhaseAttestation,
    PhaseRun,
    PostMortem,
    Rollout,
    Signature,
)
from ..models.people import is_service_account
from ..notifications import announce_decision
from ..permissions import refuse, require
from ..team_language import for_the_record
from ..templatetags.times import in_words
from . import audit, controls, evidence, evidence_words, phases
from .audit_checkpoints import enqueue_checkpoint
from .preflight import StartRefused, start_phase

Outcome = Decision.Outcome
ROLE_GROUPS = {Signature.Role.TECH_LEAD: roles.TECH_LEAD, Signature.Role.DEVOPS: roles.DEVOPS}


class SignRefused(controls.ControlRefused):
    """The signature cannot be given as asked; the message says why."""


class EvidenceChanged(SignRefused):
    """The evidence moved on since the signer loaded the page."""


def roles_of(person: AbstractBaseUser) -> list[str]:
    """The signing roles a person holds."""
    if person.is_superuser:
        return list(ROLE_GROUPS)
    groups = set(person.groups.values_list("name", flat=True))
    if roles.ADMIN in groups:
        return list(ROLE_GROUPS)
    return [role for role, group in ROLE_GROUPS.items() if group in groups]


def open_decision(run: PhaseRun) -> Decision | None:
    return run.decisions.filter(state=Decision.State.OPEN).first()


def sign(
    *,
    run: PhaseRun,
    outcome: str,
    role: str,
    seen_digest: str,
    justification: str,
    person,
    now: datetime,
    request=None,
) -> Signature:
    justification = justification.strip()
    environment = run.rollout.environment
    require(person, "rollout.sign_decision", environment=environment, obj=run, request=request)
    if is_service_account(person):
        refuse(
            _("A service account cannot sign a decision: two people sign."),
            needs="a person",
            environment=environment,
            obj=run,
            actor=person,
            request=request,
        )
    if role not in roles_of(person):
        label = Signature.Role(role).label
        refuse(
            _("You do not hold the role %(label)s.") % {"label": label},
            needs=f"the role {label}",
            environment=environment,
            obj=run,
            actor=person,
            request=request,
        )
    # Recorded after the transaction rolled back, so the refusal itself stays on record.
    with _refusals_audited(run, person, request):
        return _sign(run, outcome, role, seen_digest, justification, person, now, request)


def _sign(run, outcome, role, seen_digest, justification, person, now, request) -> Signature:
    phases.advance(run.rollout, now=now)  # a window that just ended is decision due first
    with transaction.atomic():
        run = (
            PhaseRun.objects.select_for_update()
            .select_related("phase", "rollout__plan", "rollout__environment")
            .get(pk=run.pk)
        )
        _check_window(run, outcome, now)
        current = evidence.build(run, now)
        if seen_digest != current.digest:
            raise EvidenceChanged(
                _(
                    "The evidence changed since you loaded this page (new metrics, an "
                    "incident or an attestation). Review the figures below and sign again."
                )
            )
        if outcome == Outcome.GO and _emergency_active(run):
            raise SignRefused(
                _("The emergency stop is active: GO is not possible until it is lifted.")
            )
        if outcome == Outcome.GO and run.build_changes.filter(resolution="").exists():
            raise SignRefused(
                _(
                    "A new Worker build went live during this window: GO is not possible "
                    "until someone restarts the window from the new build or keeps it with "
                    "a reason."
                )
            )
        if outcome != current.outcome and not justification:
            raise SignRefused(
                _(
                    "You are signing %(label)s against the recommendation (%(label2)s): "
                    "write a justification."
                )
                % {"label": Outcome(outcome).label, "label2": Outcome(current.outcome).label},
            )
        decision = open_decision(run)
        if decision is not None and decision.outcome != outcome:
            raise SignRefused(
                _(
                    "A %(outcome)s decision is open with %(decision)s's signature: sign "
                    "it, or withdraw it first."
                )
                % {"outcome": decision.get_outcome_display(), "decision": _names(decision)},
            )
        if decision is None:
            decision = Decision.objects.create(
                phase_run=run,
                outcome=outcome,
                recommendation=current.outcome,
                evidence=current.document,
                evidence_digest=current.digest,
                justification=justification,
                early=run.window_open(now),
                created_at=now,
                created_by=person,
            )
        elif decision.evidence_digest != current.digest:
            _invalidate(decision, current, now, request)
        try:
            with transaction.atomic():
                signature = Signature.objects.create(
                    decision=decision,
                    signer=person,
                    role=role,
                    evidence_digest=current.digest,
                    justification=justification,
                    signed_at=now,
                )
        except IntegrityError as clash:
            taken = decision.signatures.filter(invalidated_at__isnull=True)
            message = (
                _("You already signed this decision: a second person must.")
                if taken.filter(signer=person).exists()
                else _("The %(label)s signature is already given.")
                % {"label": Signature.Role(role).label}
            )
            raise SignRefused(message) from clash
        audit.record(
            action="decision.signed",
            actor=person,
            environment=run.environment,
            obj=decision,
            after={"outcome": outcome, "role": role, "evidence": current.digest[:12]},
            reason=justification,
            detail=f"{decision.get_outcome_display()} for {run} signed as "
            f"{signature.get_role_display()}; recommendation "
            f"{Outcome(current.outcome).label}" + (" (early)" if decision.early else ""),
            request=request,
        )
        valid = list(decision.signatures.filter(invalidated_at__isnull=True))
        if {item.role for item in valid} == set(ROLE_GROUPS):
            take_effect(decision, valid, now=now, request=request)
    return signature


def _check_window(run, outcome, now):
    if run.state not in (PhaseRun.State.OBSERVING, PhaseRun.State.DECISION_DUE):
        raise SignRefused(
            _("%(run)s is %(state)s: no decision can be signed for it.")
            % {"run": run, "state": run.get_state_display()}
        )
    if run.window_open(now) and outcome != Outcome.NO_GO:
        raise SignRefused(
            _(
                "The observation window of %(run)s ends at %(window_ends_at)s; "
                "only NO-GO may be signed before that."
            )
            % {"run": run, "window_ends_at": in_words(run.window_ends_at)},
        )


def _emergency_active(run: PhaseRun) -> bool:
    desired = DesiredConfig.objects.filter(environment=run.rollout.environment).first()
    return desired is not None and desired.emergency_proxy


def _names(decision: Decision) -> str:
    signers = decision.signatures.filter(invalidated_at__isnull=True).select_related("signer")
    return ", ".join(item.signer.get_username() for item in signers) or _("no one")


def _invalidate(decision: Decision, current, now, request) -> None:
    """New evidence before the second signature: the signatures given on the old evidence no
    longer count, and the decision now carries the new evidence."""
    changes = evidence.changes_between(decision.evidence, current.document)
    why = for_the_record(invalidation_words, {"evidence_changes": changes}, "")
    invalid = decision.signatures.filter(invalidated_at__isnull=True)
    for signature in invalid.select_related("signer"):
        audit.record(
            action="decision.signature_invalidated",
            system="sign-off",
            environment=decision.phase_run.rollout.environment,
            obj=decision,
            outcome=AuditEntry.Outcome.FAILED,
            detail=f"{signature.signer.get_username()}'s {signature.get_role_display()} "
            f"signature: {why}",
            request=request,
        )
    invalid.update(
        invalidated_at=now,
        invalidated_reason=why,
        invalidated_because={"evidence_changes": changes},
    )
    decision.evidence = current.document
    decision.evidence_digest = current.digest
    decision.recommendation = current.outcome
    decision.save(update_fields=["evidence", "evidence_digest", "recommendation"])


def invalidation_words(because: dict, kept: str) -> str:
    """Why a signature no longer counts, in the active language and time zone, from the facts
    kept with it (``Signature.invalidated_because``); ``kept`` (its ``invalidated_reason``) for a
    signature from before the facts were kept."""
    if "evidence_changes" in because:
        return _("evidence changed before the second signature: %(changes)s") % {
            "changes": evidence_words.changes_words(because["evidence_changes"])
        }
    if "withdrawn_by" in because:
        return _("decision withdrawn by %(name)s") % {"name": because["withdrawn_by"]}
    return kept


def withdraw(*, decision: Decision, person, note: str, now: datetime, request=None) -> Decision:
    if not roles_of(person):
        refuse(
            _("Only a tech lead or a DevOps engineer may withdraw a decision."),
            needs="the role tech lead or DevOps",
            environment=decision.phase_run.rollout.environment,
            obj=decision,
            actor=person,
            request=request,
        )
    note = note.strip()
    if not note:
        _refuse(decision.phase_run, person, request, _("Say why the decision is withdrawn."))
    if not Decision.objects.filter(pk=decision.pk, state=Decision.State.OPEN).update(
        state=Decision.State.WITHDRAWN, closed_note=note
    ):
        _refuse(decision.phase_run, person, request, _("This decision is no longer open."))
    because = {"withdrawn_by": person.get_username()}
    decision.signatures.filter(invalidated_at__isnull=True).update(
        invalidated_at=now,
        invalidated_reason=for_the_record(invalidation_words, because, ""),
        invalidated_because=because,
    )
    audit.record(
        action="decision.withdrawn",
        actor=person,
        environment=decision.phase_run.rollout.environment,
        obj=decision,
        reason=note,
        detail=f"{decision.get_outcome_display()} for {decision.phase_run} withdrawn",
        request=request,
    )
    decision.refresh_from_db()
    return decision


def attest(*, run: PhaseRun, kind: str, value: bool, note: str, person, now, request=None):
    note = note.strip()
    if kind not in PhaseAttestation.Kind.values:
        _refuse(run, person, request, _("Unknown attestation %(kind)s.") % {"kind": repr(kind)})
    if not note:
        _refuse(run, person, request, _("Write a note: what did you look at?"))
    if run.state not in (PhaseRun.State.OBSERVING, PhaseRun.State.DECISION_DUE):
        _refuse(
            run,
            person,
            request,
            _("%(run)s is %(state)s: nothing to attest.")
            % {"run": run, "state": run.get_state_display()},
        )
    given = PhaseAttestation.objects.create(
        phase_run=run, kind=kind, value=value, note=note, given_by=person, given_at=now
    )
    audit.record(
        action="phase.attested",
        actor=person,
        environment=run.environment,
        obj=run,
        after={"kind": kind, "value": value},
        reason=note,
        detail=f"{given.get_kind_display()}: {'yes' if value else 'NO'} for {run}",
        request=request,
    )
    return given


# --- taking effect -------------------------------------------------------------------------------


def take_effect(decision: Decision, signatures: list[Signature], *, now, request=None) -> None:
    run = decision.phase_run
    rollout = run.rollout
    first, second = sorted(signatures, key=lambda item: (item.signed_at, item.pk))
    names = _("%(signer)s and %(signer2)s") % {
        "signer": first.signer.get_username(),
        "signer2": second.signer.get_username(),
    }
    Decision.objects.filter(pk=decision.pk).update(state=Decision.State.EFFECTIVE, effective_at=now)
    # The outcome and its time live on the decision (effective_at), not copied here.
    PhaseRun.objects.filter(pk=run.pk).update(state=PhaseRun.State.DECIDED)
    run.state = PhaseRun.State.DECIDED
    reason = f"{decision.get_outcome_display()} for {run} signed by {names}"
    audit.record(
        action="decision.effective",
        actor=second.signer,
        environment=rollout.environment,
        obj=decision,
        after={"outcome": decision.outcome},
        reason=decision.justification,
        detail=reason,
        request=request,
    )
    announce_decision(decision, names)
    if decision.outcome == Outcome.NO_GO:
        _no_go(decision, rollout, second.signer, reason, now, request)
    elif decision.outcome == Outcome.HOLD:
        _hold(decision, rollout, run, second.signer, now, request)
    else:
        _go(decision, rollout, run, first.signer, second.signer, reason, now, request)
    transaction.on_commit(enqueue_checkpoint)


def _no_go(decision, rollout, person, reason, now, request):
    try:
        change = controls.rollback(
            environment=rollout.environment,
            reason=reason,
            expected_version=None,
            actor=person,
            request=request,
            decision=decision,
        )
    except controls.ControlRefused:
        change = None  # already at 0%: nothing to roll back
    Decision.objects.filter(pk=decision.pk).update(result_change=change)
    facts = timeline_facts(decision.phase_run)
    PostMortem.objects.create(
        decision=decision,
        timeline=for_the_record(timeline_words, facts),
        timeline_facts=facts,
        created_at=now,
        updated_at=now,
    )
    phases.set_state(
        rollout, Rollout.State.ABORTED, now=now, actor=person, reason=reason, request=request
    )


def _hold(decision, rollout, run, person, now, request):
    held = phases.next_window(rollout, run, person=person, now=now, in_effect_at=now)
    Decision.objects.filter(pk=decision.pk).update(next_phase_run=held)


def _go(decision, rollout, run, approver, person, reason, now, request):
    following = (
        Phase.objects.filter(plan=run.phase.plan, position__gt=run.phase.position)
        .order_by("position")
        .first()
    )
    if following is None or run.phase.percent >= 100:
        phases.set_state(
            rollout, Rollout.State.COMPLETED, now=now, actor=person, reason=reason, request=request
        )
        return
    phases.set_state(
        rollout, Rollout.State.AWAITING_NEXT, now=now, actor=person, reason=reason, request=request
    )
    desired = DesiredConfig.objects.get(environment=rollout.environment)
    try:
        with transaction.atomic():
            change = start_phase(
                environment=rollout.environment,
                tag=following.tag,
                reason=reason,
                expected_version=desired.version,
                override_reason="",
                person=person,
                now=now,
                request=request,
                approved_by=approver,
            )
    except (StartRefused, controls.ConfigConflict) as refused:
        audit.record(
            action="decision.next_phase_waiting",
            system="sign-off",
            environment=rollout.environment,
            obj=decision,
            outcome=AuditEntry.Outcome.PENDING,
            detail=f"{following.tag} did not start with the GO: {refused} — start it from the "
            "pre-flight page",
            request=request,
        )
        return
    next_run = phases.open_run(rollout)
    Decision.objects.filter(pk=decision.pk).update(result_change=change, next_phase_run=next_run)


def timeline_facts(run: PhaseRun) -> dict:
    """The phase's timeline as facts, from the audit trail: kept with the post-mortem so that its
    page says it in its reader's language (``timeline_words``)."""
    entries = AuditEntry.objects.filter(
        environment=run.rollout.environment, created_at__gte=run.started_at
    ).order_by("created_at", "id")
    return {
        "phase": {"tag": run.phase.tag, "percent": run.phase.percent, "window": run.window_number},
        "started_at": run.started_at.isoformat(),
        "in_effect_at": run.in_effect_at.isoformat() if run.in_effect_at else None,
        "entries": [
            {
                "at": entry.created_at.isoformat(),
                "action": entry.action,
                "by": entry.actor_label,
                "detail": entry.detail,
            }
            for entry in entries[:200]
        ],
    }


def timeline_words(facts: dict) -> str:
    """The timeline in the active language and time zone: our framing is said, an entry's action
    and detail stay as the audit trail keeps them."""
    phase = facts["phase"]
    if phase["window"] > 1:
        name = _("%(tag)s (%(percent)s%%, window %(window)s)") % phase
    else:
        name = _("%(tag)s (%(percent)s%%)") % phase
    lines = [_("%(phase)s — started %(at)s") % {"phase": name, "at": in_words(facts["started_at"])}]
    if facts["in_effect_at"]:
        lines.append(
            "- " + _("%(at)s in effect at the edge") % {"at": in_words(facts["in_effect_at"])}
        )
    for entry in facts["entries"]:
        words = {**entry, "at": in_words(entry["at"])}
        if entry["detail"]:
            lines.append("- " + _("%(at)s %(action)s by %(by)s: %(detail)s") % words)
        else:
            lines.append("- " + _("%(at)s %(action)s by %(by)s") % words)
    return limits.cut(
        "\n".join(lines),
        limits.POST_MORTEM_SECTION,
        _("cut here: the full trail is on the audit page"),
    )


def timeline_shown(post_mortem: PostMortem) -> str:
    """The post-mortem's timeline for its reader: said from its facts in their language while
    nobody has edited it; as it is kept once someone has (or when it keeps no facts: a
    post-mortem from before they were kept)."""
    facts = post_mortem.timeline_facts
    if not facts:
        return post_mortem.timeline
    try:
        untouched = post_mortem.timeline == for_the_record(timeline_words, facts)
        return timeline_words(facts) if untouched else post_mortem.timeline
    except (KeyError, TypeError, ValueError):
        return post_mortem.timeline


def _refuse(run, person, request, message):
    """Refuse a sign-off act (audited)."""
    with _refusals_audited(run, person, request):
        raise SignRefused(message)


def _refusals_audited(run, person, request):
    """``decision.refused``, written by the service so every caller's refusal is on record."""
    return audit.refusals_audited(
        "decision.refused",
        SignRefused,
        actor=person,
        environment=run.rollout.environment,
        obj=run,
        request=request,
    )
