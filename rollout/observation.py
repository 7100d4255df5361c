"""Reading what KV holds and what the edge reports, for the overview's side-by-side view."""

from django.conf import settings
from django.utils import timezone

from integrations.cloudflare_kv import KVError
from integrations.edge_qa import probe_qa

from .kv_writer import edge_client, kv_client_for
from .models import Environment


def observe(environment_id: int) -> Environment | None:
    environment = Environment.objects.filter(pk=environment_id).first()
    if environment is None:
        return None
    fields = {"last_kv_read_at": timezone.now()}
    try:
        with kv_client_for(environment) as kv:
            raw = kv.get_value()
        fields.update(
            last_kv_raw=raw.decode("utf-8", "replace")[:4000] if raw is not None else "",
            last_kv_missing=raw is None,
            last_kv_error="",
        )
    except KVError as exc:
        fields["last_kv_error"] = exc.message
    report = probe_qa(environment.qa_url, client=edge_client(), headers=settings.EDGE_PROBE_HEADERS)
    fields.update(last_edge_report=report.summary(), last_edge_read_at=timezone.now())
    Environment.objects.filter(pk=environment.pk).update(**fields)
    environment.refresh_from_db()
    return environment
