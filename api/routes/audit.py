"""The audit trail, filtered and keyset-paginated (newest first): as fast on the thousandth page
as on the first."""

from datetime import datetime

from django.utils.translation import gettext as _
from ninja import Router
from ninja.errors import HttpError

from rollout.models import AuditEntry
from rollout.views.audit import filtered_entries

from .. import shapes
from ..auth import require_read
from ..schemas import AuditPage

router = Router(tags=["audit"])

MAX_LIMIT = 500


@router.get("/audit", response=AuditPage, summary="Audit entries, newest first")
def list_entries(
    request,
    since: datetime | None = None,
    until: datetime | None = None,
    environment: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
):
    """``environment`` is ``service/name``; ``action`` matches its start (``config.`` finds every
    config change); ``cursor`` is the ``next_cursor`` of the page before."""
    require_read(request, "rollout.view_auditentry")
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(422, _("limit must be from 1 to %(most)s.") % {"most": MAX_LIMIT})
    entries = filtered_entries({"actor": actor, "action": action})
    if environment:
        service, _slash, name = environment.partition("/")
        entries = entries.filter(environment__service__name=service, environment__name=name)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    if cursor:
        if not cursor.isdigit():
            raise HttpError(
                422, _("cursor is not one this API gave out: use next_cursor as it is.")
            )
        entries = entries.filter(id__lt=int(cursor))
    page = list(entries.select_related("environment__service").order_by("-id")[: limit + 1])
    shown = page[:limit]
    return {
        "entries": [_entry(entry) for entry in shown],
        "next_cursor": str(shown[-1].pk) if len(page) > limit else None,
    }


def _entry(entry: AuditEntry) -> dict:
    return {
        "id": entry.pk,
        "at": entry.created_at,
        "actor": entry.actor_label,
        "action": entry.action,
        "environment": shapes.reference(entry.environment) if entry.environment else None,
        "object": f"{entry.object_type} {entry.object_id}".strip(),
        "outcome": entry.outcome,
        "reason": entry.reason,
        "detail": entry.detail,
        "via": entry.via,
        "before": entry.before,
        "after": entry.after,
    }
