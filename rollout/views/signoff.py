"""The evidence, the attestations, the GO / HOLD / NO-GO sign-off and the post-mortem."""

import difflib
import hashlib

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import limits
from ..forms.phases import NoteForm, PhaseAttestationForm
from ..forms.signoff import PostMortemForm, SignForm
from ..models import Decision, PhaseRun, PostMortem, Signature
from ..permissions import guarded, shown_to
from ..responses import fragment_or_page
from ..services import audit, evidence, signoff
from .lookups import VIEW_PERMISSION, acting, phase_run_or_404


def decision_context(request, run, **extra) -> dict:
    now = timezone.now()
    context = {"run": run, "now": now, **extra}
    if run.in_effect_at is None:
        return context
    decisions = run.decisions.prefetch_related(
        Prefetch("signatures", queryset=Signature.objects.select_related("signer"))
    ).select_related("created_by")
    effective = next((item for item in decisions if item.state == "effective"), None)
    open_decision = next((item for item in decisions if item.state == "open"), None)
    shown = effective.evidence if effective else None
    current = None
    if effective is None:
        current = evidence.build(run, now)
        shown = current.document
    signer_roles = signoff.roles_of(request.user)
    # Always a fresh form bound to the evidence shown now: a signer signs only what they see.
    sign_form = SignForm(
        initial={
            "outcome": open_decision.outcome if open_decision else current and current.outcome,
            "role": signer_roles[0] if signer_roles else "",
            "evidence_digest": current.digest if current else "",
            "justification": request.POST.get("justification", "")[:4000],
        }
    )
    context.update(
        fingerprint=evidence.fingerprint(run, now) if current else "",
        decisions=decisions,
        effective=effective,
        open_decision=open_decision,
        current=current,
        evidence_document=shown,
        criteria=shown["recommendation"]["criteria"],
        signer_roles=[(role, Signature.Role(role).label) for role in signer_roles],
        sign_form=sign_form,
        attest_form=extra.pop("attest_form", None) or PhaseAttestationForm(),
        can_sign=effective is None
        and run.state in (PhaseRun.State.OBSERVING, PhaseRun.State.DECISION_DUE),
        window_open=run.window_open(now),
        **extra,
    )
    return context


def _render_decision(request, run, *, status=200, **extra):
    return fragment_or_page(
        request,
        "rollout/decisions/_decision.html",
        decision_context(request, run, **extra),
        page=reverse("rollout:phase_run", args=[run.public_id]),
        status=status,
    )


@guarded("rollout.observe_phase")
def attest(request, public_id):
    run = phase_run_or_404(public_id)
    form = PhaseAttestationForm(request.POST)
    if not form.is_valid():
        return _render_decision(
            request, run, status=422, attest_form=form, error=_first_error(form)
        )
    data = form.cleaned_data
    try:
        signoff.attest(
            run=run, kind=data["kind"], value=data["value"], note=data["note"], **acting(request)
        )
    except signoff.SignRefused as refused:
        return _render_decision(request, run, status=409, error=str(refused))
    return _render_decision(request, run, success=_("Attestation recorded."))


@guarded("rollout.sign_decision")
def sign(request, public_id):
    run = phase_run_or_404(public_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        return _render_decision(request, run, status=422, error=_first_error(form))
    data = form.cleaned_data
    try:
        signature = signoff.sign(
            run=run,
            outcome=data["outcome"],
            role=data["role"],
            seen_digest=data["evidence_digest"],
            justification=data["justification"],
            **acting(request),
        )
    except signoff.SignRefused as refused:
        return _render_decision(request, run, status=409, error=str(refused))
    run.refresh_from_db()
    decision = signature.decision
    decision.refresh_from_db()
    if decision.state == Decision.State.EFFECTIVE:
        message = _("%(outcome)s is signed by both and in effect.") % {
            "outcome": decision.get_outcome_display()
        }
    else:
        message = _(
            "Signed %(outcome)s as %(role)s: it takes effect with the second signature."
        ) % {"outcome": decision.get_outcome_display(), "role": signature.get_role_display()}
    return _render_decision(request, run, success=message)


@shown_to(VIEW_PERMISSION)
def decision(request, public_id):
    """A decision lives on its phase's page (where the audit trail's links lead)."""
    found = get_object_or_404(Decision.objects.select_related("phase_run"), public_id=public_id)
    return redirect("rollout:phase_run", found.phase_run.public_id)


@guarded("rollout.sign_decision")
def withdraw(request, public_id):
    decision = get_object_or_404(
        Decision.objects.select_related("phase_run__rollout__environment", "phase_run__phase"),
        public_id=public_id,
    )
    run = phase_run_or_404(decision.phase_run.public_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _render_decision(request, run, status=422, error=form.errors["note"][0])
    try:
        signoff.withdraw(decision=decision, note=form.cleaned_data["note"], **acting(request))
    except signoff.SignRefused as refused:
        return _render_decision(request, run, status=409, error=str(refused))
    return _render_decision(request, run, success=_("The decision was withdrawn."))


def _first_error(form) -> str:
    for errors in form.errors.values():
        return errors[0]
    return _("Check the form.")


def _post_mortem(public_id) -> PostMortem:
    return get_object_or_404(
        PostMortem.objects.select_related(
            "decision__phase_run__phase", "decision__phase_run__rollout__environment", "owner"
        ),
        public_id=public_id,
    )


def post_mortem(request, public_id):
    """Read with the view permission; save with the permission to observe a phase."""
    if request.method == "POST":
        return _save_post_mortem(request, public_id)
    return _show_post_mortem(request, public_id)


@shown_to(VIEW_PERMISSION)
def _show_post_mortem(request, public_id):
    record = _post_mortem(public_id)
    return _render_post_mortem(request, record, _form(record))


def _form(record, data=None) -> PostMortemForm:
    """The form, its timeline as the reader is shown it (``signoff.timeline_shown``)."""
    return PostMortemForm(
        data, instance=record, initial={"timeline": signoff.timeline_shown(record)}
    )


def _render_post_mortem(request, record, form, status=200, **extra):
    context = {"record": record, "form": form, "timeline": signoff.timeline_shown(record), **extra}
    return render(request, "rollout/decisions/post_mortem.html", context, status=status)


# A post-mortem section may hold 20,000 characters and is saved many times; the audit trail, which
# is never pruned, keeps what changed in a bounded form: each changed field's start, its length
# and digest, and a line diff cut to fit the entry's detail.
EXCERPT_CHARACTERS = 300


DIFF_CHARACTERS = 3000


def _post_mortem_texts(record) -> dict:
    return {field: str(getattr(record, field) or "") for field in PostMortemForm.Meta.fields}


def _excerpt(text: str) -> str | dict:
    if len(text) <= EXCERPT_CHARACTERS:
        return text
    return {
        "start": text[:EXCERPT_CHARACTERS],
        "characters": len(text),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def _diff(before: dict, after: dict, changed: list) -> str:
    lines = []
    for field in changed:
        lines += difflib.unified_diff(
            before[field].splitlines(), after[field].splitlines(), field, field, n=0, lineterm=""
        )
    return limits.cut("\n".join(lines), DIFF_CHARACTERS, "diff cut here")


@guarded("rollout.observe_phase")
def _save_post_mortem(request, public_id):
    record = _post_mortem(public_id)
    before = _post_mortem_texts(record)
    # A timeline sent back as it was shown (in the reader's language) is one nobody edited: it
    # keeps its text and stays said from its facts.
    kept, shown = record.timeline, signoff.timeline_shown(record)
    form = _form(record, request.POST)
    if not form.is_valid():
        record.timeline = kept
        return _render_post_mortem(request, record, form, 422, error=_first_error(form))
    record = form.save(commit=False)
    if record.timeline == shown:
        record.timeline = kept
    record.updated_at = timezone.now()
    record.updated_by = request.user
    record.save()
    after = _post_mortem_texts(record)
    changed = [field for field in after if after[field] != before[field]]
    audit.record(
        action="postmortem.updated",
        actor=request.user,
        environment=record.decision.phase_run.rollout.environment,
        obj=record,
        before={field: _excerpt(before[field]) for field in changed},
        after={field: _excerpt(after[field]) for field in changed},
        # In English for the record, whoever saved it.
        detail=f"post-mortem of {record.decision.phase_run}\n" + _diff(before, after, changed),
        request=request,
    )
    return _render_post_mortem(request, record, _form(record), success=_("Saved."))
