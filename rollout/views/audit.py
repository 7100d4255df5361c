"""The audit page and its export. Kept apart from the controls: it only reads."""

import csv
import json
import re
from datetime import datetime, time, timedelta

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from ..forms.audit import AuditFilterForm
from ..models import AuditEntry, Environment
from ..permissions import shown_to

PAGE_SIZE = 50
EXPORT_FIELDS = [
    "id",
    "created_at",
    "actor_label",
    "action",
    "environment",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "outcome",
    "detail",
    "request_id",
    "client_ip",
    "via",
    "entry_hash",
]


def filtered_entries(data: dict):
    entries = AuditEntry.objects.all()
    if data.get("actor"):
        entries = entries.filter(actor_label=data["actor"])
    if data.get("action"):
        entries = entries.filter(action__startswith=data["action"])
    if data.get("environment"):
        entries = entries.filter(environment__public_id=data["environment"])
    zone = timezone.get_current_timezone()
    if data.get("since"):
        entries = entries.filter(created_at__gte=datetime.combine(data["since"], time(), zone))
    if data.get("until"):
        end = datetime.combine(data["until"] + timedelta(days=1), time(), zone)
        entries = entries.filter(created_at__lt=end)
    if data.get("q"):
        entries = _matching_text(entries, data["q"])
    return entries


# Must match the trigram index of migration 0005 exactly.
SEARCH_EXPRESSION = (
    "upper(reason || ' ' || detail || ' ' || action || ' ' || actor_label || ' ' || object_id)"
)


def _like_pattern(text: str) -> str:
    escaped = text.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matching_text(entries, text: str):
    if connection.vendor == "postgresql":
        matches = RawSQL(f"{SEARCH_EXPRESSION} LIKE %s", [_like_pattern(text)], BooleanField())
        return entries.filter(matches)
    return entries.filter(
        Q(reason__icontains=text)
        | Q(detail__icontains=text)
        | Q(action__icontains=text)
        | Q(actor_label__icontains=text)
        | Q(object_id__icontains=text)
    )


@shown_to("rollout.view_auditentry")
def audit_log(request):
    """Keyset pagination (``before`` / ``after`` an id): as fast on page 2,000 as on page 1."""
    form = AuditFilterForm(request.GET)
    entries, newer, older = [], None, None
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        base = filtered_entries(data).select_related("environment__service")
        if data.get("after") is not None:
            page = list(base.filter(id__gt=data["after"]).order_by("id")[: PAGE_SIZE + 1])
            has_more_newer = len(page) > PAGE_SIZE
            entries = list(reversed(page[:PAGE_SIZE]))
            newer = entries[0].pk if entries and has_more_newer else None
            older = entries[-1].pk if entries else None
        else:
            if data.get("before") is not None:
                base = base.filter(id__lt=data["before"])
            page = list(base.order_by("-id")[: PAGE_SIZE + 1])
            entries = page[:PAGE_SIZE]
            older = entries[-1].pk if len(page) > PAGE_SIZE else None
            newer = entries[0].pk if entries and data.get("before") is not None else None
    else:
        status = 422
    context = {
        "form": form,
        "entries": entries,
        "newer": newer,
        "older": older,
        "environments": Environment.objects.select_related("service"),
        "query": _query_without_cursor(request),
    }
    template = "rollout/_audit_rows.html" if request.htmx else "rollout/audit.html"
    return render(request, template, context, status=status)


def _query_without_cursor(request) -> str:
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    return query.urlencode()


class _Echo:
    def write(self, value):
        return value


# A spreadsheet reads a cell beginning with one of these as a formula (=HYPERLINK(…) runs).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def spreadsheet_safe(value) -> str:
    """The cell as text a spreadsheet shows but never runs: a leading ``'`` before a formula
    character. A plain negative number ("-5") is left as it is: it cannot run, and quoting it
    would turn a number into text."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _row(entry: AuditEntry) -> dict:
    return {
        "id": entry.pk,
        "created_at": entry.created_at.isoformat(),
        "actor_label": entry.actor_label,
        "action": entry.action,
        "environment": str(entry.environment) if entry.environment_id else "",
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
        "client_ip": entry.client_ip,
        "entry_hash": entry.entry_hash,
    }


@shown_to("rollout.view_auditentry")
def audit_export(request, fmt):
    """The whole filtered set, oldest first, streamed so 100,000 entries never sit in memory.
    CSV cells are made spreadsheet-safe (``spreadsheet_safe``); JSON keeps every value exact."""
    form = AuditFilterForm(request.GET)
    if fmt not in ("csv", "json") or not form.is_valid():
        problems = "; ".join(" ".join(errors) for errors in form.errors.values())
        message = problems or f"Unknown export format {fmt!r}: use csv or json."
        return render(
            request,
            "rollout/audit.html",
            {"form": form, "export_error": message},
            status=422 if problems else 404,
        )
    rows = (
        filtered_entries(form.cleaned_data)
        .select_related("environment__service")
        .order_by("id")
        .iterator(chunk_size=2000)
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        writer = csv.DictWriter(_Echo(), fieldnames=EXPORT_FIELDS)

        def lines():
            yield writer.writeheader()
            for entry in rows:
                row = _row(entry)
                row["before"] = json.dumps(row["before"]) if row["before"] is not None else ""
                row["after"] = json.dumps(row["after"]) if row["after"] is not None else ""
                yield writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:

        def documents():
            yield "[\n"
            for index, entry in enumerate(rows):
                yield ("" if index == 0 else ",\n") + json.dumps(_row(entry))
            yield "\n]\n"

        response = StreamingHttpResponse(documents(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response
