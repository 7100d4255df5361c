"""Percent requests waiting for a second person, their approval or rejection, and config changes.
Approve and reject call the services the page calls: the approver's permission, the two-person
rule (a person's own token never approves their request; a service account only with the right an
admin gave it, never its own) and the audit are theirs."""

from typing import Literal
from uuid import UUID

from django.utils.translation import gettext_lazy
from ninja import Router

from rollout.models import ConfigChange, PercentRequest
from rollout.services import controls

from .. import shapes
from ..auth import require_read
from ..schemas import ApprovalAnswer, ChangeOut, NoteIn, PercentRequestOut, RequestAnswer

router = Router(tags=["requests and changes"])

LISTED = 200


def _request(public_id) -> PercentRequest:
    return shapes.found(
        PercentRequest.objects.select_related("environment__service", "requested_by"),
        public_id,
        gettext_lazy("percent request"),
    )


@router.get("/requests", response=list[PercentRequestOut], summary="Percent requests")
def list_requests(
    request,
    state: Literal["pending", "approved", "rejected", "stale", "cancelled"] = "pending",
):
    require_read(request)
    found = PercentRequest.objects.filter(state=state).select_related(
        "environment__service", "requested_by", "decided_by", "superseded_by"
    )
    return [shapes.percent_request(item) for item in found[:LISTED]]


@router.get("/requests/{public_id}", response=PercentRequestOut, summary="One percent request")
def get_request(request, public_id: UUID):
    require_read(request)
    return shapes.percent_request(_request(public_id))


@router.post(
    "/requests/{public_id}/approve",
    response=ApprovalAnswer,
    summary="Approve another person's increase (two-person rule)",
)
def approve(request, public_id: UUID, payload: NoteIn):
    pending = _request(public_id)
    change = controls.approve_percent_request(
        percent_request=pending, approver=request.user, note=payload.note, request=request
    )
    pending.refresh_from_db()
    return {"request": shapes.percent_request(pending), "change": shapes.change(change)}


@router.post(
    "/requests/{public_id}/reject",
    response=RequestAnswer,
    summary="Reject (an approver) or cancel (the requester) a pending increase",
)
def reject(request, public_id: UUID, payload: NoteIn):
    decided = controls.reject_percent_request(
        percent_request=_request(public_id),
        person=request.user,
        note=payload.note,
        request=request,
    )
    return {"request": shapes.percent_request(decided)}


@router.get("/changes/{public_id}", response=ChangeOut, summary="One config change")
def get_change(request, public_id: UUID):
    require_read(request)
    change = shapes.found(
        ConfigChange.objects.select_related("environment__service", "requested_by", "approved_by"),
        public_id,
        gettext_lazy("config change"),
    )
    return shapes.change(change)
