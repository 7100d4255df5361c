"""The production pre-flight and the phase start, rollouts and their phase windows, the evidence
and the sign-off. A signature from the API names the digest of the evidence the signer read, and
is refused (409) if the evidence changed since (rollout/services/signoff.py)."""

from uuid import UUID

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Router, Status

from rollout.models import Decision, PercentRequest, PhaseRun, Rollout
from rollout.services import evidence, preflight, signoff

from .. import shapes
from ..auth import require_read
from ..problems import NotFound
from ..schemas import (
    DecisionOut,
    EvidenceOut,
    PhaseRunOut,
    PhaseStartAnswer,
    PhaseStartIn,
    PreflightOut,
    RolloutOut,
    SignIn,
)

router = Router(tags=["rollouts and phases"])

ENVIRONMENT = "/environments/{service}/{environment}"
VERDICTS = {
    "GO": Decision.Outcome.GO,
    "HOLD": Decision.Outcome.HOLD,
    "NO-GO": Decision.Outcome.NO_GO,
}
LISTED = 100


def _run(public_id) -> PhaseRun:
    run = shapes.found(
        PhaseRun.objects.select_related("phase", "rollout__plan", "rollout__environment__service"),
        public_id,
        gettext_lazy("phase window"),
    )
    return run


@router.get(f"{ENVIRONMENT}/preflight", response=PreflightOut, summary="The pre-flight checklist")
def get_preflight(request, service: str, environment: str):
    require_read(request)
    checklist = preflight.evaluate(
        shapes.environment_named(service, environment), now=timezone.now()
    )
    refusal = (
        preflight.start_refusal(checklist, tag=checklist.phase.tag, override_reason="")
        if checklist.phase
        else checklist.blocker
    )
    return {
        "may_start": not refusal,
        "refusal": refusal or None,
        "phase": checklist.phase.tag if checklist.phase else None,
        "percent": checklist.phase.percent if checklist.phase else None,
        "window_open": checklist.window.open,
        "window": checklist.window.text,
        "items": [
            {"name": item.key, "label": item.label, "ok": item.done, "detail": item.detail}
            for item in checklist.items
        ],
    }


@router.post(
    f"{ENVIRONMENT}/phases/start",
    response={201: PhaseStartAnswer},
    summary="Start the plan's next phase if the pre-flight allows it (a raise waits for a "
    "second person)",
)
def start_phase(request, service: str, environment: str, payload: PhaseStartIn):
    found = shapes.environment_named(service, environment)
    now = timezone.now()
    checklist = preflight.evaluate(found, now=now)
    tag = payload.tag or (checklist.phase.tag if checklist.phase else "")
    desired = checklist.desired
    result = preflight.start_phase(
        environment=found,
        tag=tag,
        reason=payload.reason.strip() or f"Start of phase {tag} (API)",
        expected_version=payload.expected_version or (desired.version if desired else 1),
        override_reason=payload.window_override_reason,
        person=request.user,
        now=now,
        request=request,
    )
    if isinstance(result, PercentRequest):
        run = PhaseRun.objects.get(start_request=result)
        answer = {"request": shapes.percent_request(result), "change": None}
    else:
        run = PhaseRun.objects.get(start_change=result)
        answer = {"request": None, "change": shapes.change(result)}
    return Status(201, {**shapes.phase_run(run), **answer})


@router.get("/rollouts", response=list[RolloutOut], summary="Rollouts, newest first")
def list_rollouts(request, environment: str | None = None):
    """``environment`` is ``service/name``, e.g. ``pix-immo-api/production``."""
    require_read(request)
    rollouts = Rollout.objects.select_related("environment__service").order_by("-created_at")
    if environment:
        service, _, name = environment.partition("/")
        rollouts = rollouts.filter(environment__service__name=service, environment__name=name)
    return [shapes.rollout(item) for item in rollouts[:LISTED]]


@router.get("/rollouts/{public_id}", response=RolloutOut, summary="A rollout and its phases")
def get_rollout(request, public_id: UUID):
    require_read(request)
    found = shapes.found(
        Rollout.objects.select_related("environment__service"), public_id, gettext_lazy("rollout")
    )
    return shapes.rollout(found, with_phases=True)


@router.get("/phases/{public_id}", response=PhaseRunOut, summary="A phase window")
def get_phase(request, public_id: UUID):
    require_read(request)
    return shapes.phase_run(_run(public_id))


@router.get(
    "/phases/{public_id}/evidence",
    response=EvidenceOut,
    summary="The evidence and its digest, as the sign-off page shows them",
)
def get_evidence(request, public_id: UUID):
    require_read(request)
    run = _run(public_id)
    if run.in_effect_at is None:
        raise NotFound(_("This phase has no evidence yet: its config is not in effect."))
    current = evidence.build(run, timezone.now())
    return {
        "digest": current.digest,
        "document": current.document,
        "recommendation": current.outcome,
    }


@router.post(
    "/phases/{public_id}/sign",
    response={201: DecisionOut},
    summary="Sign GO / HOLD / NO-GO with the digest of the evidence you read",
)
def sign(request, public_id: UUID, payload: SignIn):
    run = _run(public_id)
    held = signoff.roles_of(request.user)
    signature = signoff.sign(
        run=run,
        outcome=VERDICTS[payload.verdict],
        role=payload.role or (held[0] if held else "tech_lead"),
        seen_digest=payload.evidence_digest,
        justification=payload.reason,
        person=request.user,
        now=timezone.now(),
        request=request,
    )
    decision = Decision.objects.select_related("phase_run").get(pk=signature.decision_id)
    return Status(201, shapes.decision(decision))


@router.get("/decisions/{public_id}", response=DecisionOut, summary="A decision")
def get_decision(request, public_id: UUID):
    require_read(request)
    return shapes.decision(
        shapes.found(
            Decision.objects.select_related("phase_run"), public_id, gettext_lazy("decision")
        )
    )
