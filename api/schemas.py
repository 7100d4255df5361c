"""The shapes /api/v1 reads and answers, as the OpenAPI document states them.

Every body a client sends refuses fields it does not know (``extra="forbid"``) and values of the
wrong type (strict: ``"25"`` is not a percent): a typo in a pipeline is a 422, never a silent
default.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, StrictStr, field_validator

from rollout import limits
from rollout.forms.fields import TAG_PATTERN


class Body(Schema):
    model_config = ConfigDict(extra="forbid")


def _reason(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("give a reason: it goes into the audit trail")
    return value


Reason = Field(max_length=limits.REASON, description="Why; it goes into the audit trail.")
Version = Field(ge=1, description="The desired-config version you saw (compare-and-set).")


class PercentIn(Body):
    percent: StrictInt = Field(ge=0, le=100)
    tag: StrictStr = Field(pattern=TAG_PATTERN, description="The phase tag, e.g. B2b.")
    reason: StrictStr = Reason
    expected_version: StrictInt = Version

    _strip = field_validator("reason")(_reason)


class VersionedReasonIn(Body):
    reason: StrictStr = Reason
    expected_version: StrictInt = Version

    _strip = field_validator("reason")(_reason)


class EmergencyStopIn(Body):
    reason: StrictStr = Field(default="Emergency stop (NOT-AUS)", max_length=limits.REASON)
    expected_version: StrictInt | None = Field(
        default=None, ge=1, description="Accepted and ignored: a stop is never refused as stale."
    )

    _strip = field_validator("reason")(_reason)


class NoteIn(Body):
    note: StrictStr = Field(default="", max_length=limits.NOTE)


class PreviewRunIn(Body):
    build: StrictStr = Field(
        default="",
        max_length=100,
        description="Empty: the Worker version live on preview. A typed build needs "
        "build_reason where preview names its Worker script.",
    )
    build_reason: StrictStr = Field(
        default="", max_length=limits.REASON, description="Why the build is typed."
    )


class DeploymentIn(Body):
    version_id: StrictStr = Field(
        min_length=1, max_length=64, description="The Version ID `wrangler deploy` printed."
    )
    message: StrictStr = Field(default="", max_length=limits.NOTE)


class PhaseStartIn(Body):
    reason: StrictStr = Field(default="", max_length=limits.REASON)
    tag: StrictStr | None = Field(
        default=None, description="The phase you mean to start; refused if it is not the next."
    )
    expected_version: StrictInt | None = Field(default=None, ge=1)
    window_override_reason: StrictStr = Field(default="", max_length=limits.REASON)


class SignIn(Body):
    verdict: Literal["GO", "HOLD", "NO-GO"]
    reason: StrictStr = Field(
        default="",
        max_length=limits.JUSTIFICATION,
        description="Justification; needed when signing against the recommendation.",
    )
    evidence_digest: StrictStr = Field(
        min_length=64, max_length=64, description="The digest of the evidence you read."
    )
    role: Literal["tech_lead", "devops"] | None = Field(
        default=None, description="The role you sign in; default the first you hold."
    )


# --- answers ---------------------------------------------------------------------------------


class TokenOut(Schema):
    name: str
    id: UUID
    kind: Literal["personal", "service"]
    expires_at: datetime


class WhoAmI(Schema):
    user: str
    token: TokenOut
    roles: list[str]
    permissions: list[str]


class DesiredOut(Schema):
    version: int
    percent: int
    tag: str
    emergency: bool


class KvOut(Schema):
    percent: int | None
    tag: str | None
    emergency: bool | None
    read_at: datetime | None
    error: str | None = None


class EdgeOut(Schema):
    percent: int | None
    tag: str | None
    emergency: bool | None
    reason: str | None
    read_at: datetime | None
    error: str | None = None


class DriftOut(Schema):
    state: Literal["in_sync", "drift", "unknown"]
    detail: str


class ChangeBrief(Schema):
    id: UUID
    kind: str
    state: str
    version: int
    requested_at: datetime


class PercentRequestOut(Schema):
    id: UUID
    environment: str
    percent: int
    from_percent: int
    tag: str
    state: str
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    note: str
    reason: str
    base_version: int
    # Closed as stale when this version replaced the one it was asked on.
    superseded_by_version: int | None
    requested_at: datetime


class CurrentPhase(Schema):
    id: UUID
    rollout_id: UUID
    phase: str
    percent: int
    state: str
    window_ends_at: datetime | None


class EnvStatus(Schema):
    id: UUID
    service: str
    name: str
    url: str
    desired: DesiredOut | None
    kv: KvOut | None
    edge: EdgeOut | None
    drift: DriftOut
    open_changes: list[ChangeBrief]
    pending_requests: list[PercentRequestOut]
    current_phase: CurrentPhase | None


class ServiceOut(Schema):
    name: str
    environments: list[EnvStatus]


class ChangeOut(Schema):
    id: UUID
    environment: str
    kind: str
    version: int
    state: str
    requested_at: datetime
    written_at: datetime | None
    in_effect_at: datetime | None
    requested_by: str
    approved_by: str | None
    reason: str
    after: dict
    last_error: str


class ReportedDeploymentOut(Schema):
    id: int
    environment: str
    version_id: str
    message: str
    reported_by: str
    reported_at: datetime
    # Set once a read of Cloudflare serves the version.
    confirmed_at: datetime | None


class ChangeAnswer(Schema):
    change: ChangeOut


class RequestAnswer(Schema):
    request: PercentRequestOut


class ApprovalAnswer(Schema):
    request: PercentRequestOut
    change: ChangeOut


class CheckOut(Schema):
    name: str
    state: str
    detail: str


class Progress(Schema):
    done: int
    total: int


class PreviewRunOut(Schema):
    id: UUID
    environment: str
    build: str
    # "error": the suite could not finish (``error`` says why); no verdict then.
    state: Literal["queued", "running", "passed", "failed", "error"]
    verdict: Literal["GO", "NO-GO"] | None
    progress: Progress
    checks: list[CheckOut]
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    report_url: str


class PreflightItem(Schema):
    name: str
    label: str
    ok: bool
    detail: str


class PreflightOut(Schema):
    may_start: bool
    refusal: str | None
    phase: str | None
    percent: int | None
    window_open: bool
    window: str
    items: list[PreflightItem]


class PhaseRunOut(Schema):
    id: UUID
    rollout_id: UUID
    environment: str
    phase: str
    percent: int
    window_number: int
    state: str
    started_at: datetime
    in_effect_at: datetime | None
    window_started_at: datetime | None
    window_ends_at: datetime | None
    recommendation: str | None
    build: str


class PhaseStartAnswer(PhaseRunOut):
    request: PercentRequestOut | None
    change: ChangeOut | None


class RolloutOut(Schema):
    id: UUID
    environment: str
    build: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    phases: list[PhaseRunOut] = []


class EvidenceOut(Schema):
    digest: str
    document: dict
    recommendation: str


class SignatureOut(Schema):
    signer: str
    role: str
    signed_at: datetime
    valid: bool


class DecisionOut(Schema):
    id: UUID
    phase_id: UUID
    verdict: str
    state: str
    recommendation: str
    evidence_digest: str
    created_at: datetime
    effective_at: datetime | None
    signatures: list[SignatureOut]


class AuditEntryOut(Schema):
    id: int
    at: datetime
    actor: str
    action: str
    environment: str | None
    object: str
    outcome: str
    reason: str
    detail: str
    via: str
    before: dict | list | None
    after: dict | list | None


class AuditPage(Schema):
    entries: list[AuditEntryOut]
    next_cursor: str | None


class Problem(Schema):
    """An error (RFC 9457), as ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str
