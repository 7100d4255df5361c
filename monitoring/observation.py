"""One observation per environment: KV read once, ``/api/qa`` probed once, the Worker script's
deployments read once, recorded once.

Everything that shows what KV holds or what the edge reports reads this record: the overview's
side-by-side view (``Environment.last_kv_*`` and ``last_edge_*``), the drift view (``DriftState``
and its ``DriftEvent`` history) and the health checks history (``HealthCheck``). Nothing else
reads them on a schedule, so the three can never disagree about one moment, and the edge sees one
request per interval, with the environment's probe headers, inside its request budget
(integrations/edge.py). The deployments read (one Cloudflare API call, skipped while a 429's
Retry-After runs) is handed to ``rollout.services.deployments.record_read``, which records the
version serving traffic and flags a new one under an open phase window. The "in effect"
confirmation after a write is the one other reader of the edge: it is started by the write, not by
the clock, and uses the same headers, budget and fields.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations import edge
from integrations.cloudflare_kv import KVError
from integrations.http import shared_client
from integrations.worker_deployments import DeploymentsClient, DeploymentsError
from rollout.kv_writer import kv_client_for
from rollout.models import Environment
from rollout.services import deployments

from . import drift, probes
from .models import DriftState, HealthCheck


@dataclass(frozen=True)
class Observation:
    environment: Environment
    check: HealthCheck
    drift: DriftState


def claim(environment_id: int, now=None, sent_at=None) -> bool:
    """Whether this run is the one to observe for the interval its message was sent for
    (``sent_at``, else now): no observation started since half an interval before it
    (compare-and-set). So a doubled message, one taken again after its worker died or restored
    after a restart observes nothing, while one a busy worker takes late still does if nothing
    observed meanwhile: one check per interval."""
    now = now or timezone.now()
    recent = (sent_at or now) - timedelta(seconds=settings.OBSERVE_INTERVAL_SECONDS / 2)
    return bool(
        Environment.objects.filter(pk=environment_id)
        .filter(Q(last_kv_read_at__isnull=True) | Q(last_kv_read_at__lte=recent))
        .update(last_kv_read_at=now)
    )


def observe(environment_id: int) -> Observation | None:
    """Read KV and the edge once, and record what they showed for every page that shows it."""
    environment = Environment.objects.select_related("service").filter(pk=environment_id).first()
    if environment is None:
        return None
    fields = {"last_kv_read_at": timezone.now()}
    try:
        with kv_client_for(environment) as kv:
            raw, kv_error = kv.get_value(), ""
        fields.update(
            last_kv_raw=raw.decode("utf-8", "replace")[:4000] if raw is not None else "",
            last_kv_missing=raw is None,
        )
    except KVError as exc:
        raw, kv_error = None, exc.message
    fields["last_kv_error"] = kv_error
    report = edge.read_qa(environment)
    fields.update(last_edge_report=report.summary(), last_edge_read_at=timezone.now())
    Environment.objects.filter(pk=environment.pk).update(**fields)
    check = probes.record_check(environment, report)
    state, _ = DriftState.objects.get_or_create(environment=environment)
    state = drift.record(state, raw=raw, kv_error=kv_error, report=report)
    environment.refresh_from_db()
    read_deployments(environment)
    return Observation(environment=environment, check=check, drift=state)


def read_deployments(environment: Environment, now=None) -> None:
    """Read which Worker version serves the environment, unless it names no script or a rate
    limit asked to wait; a failed read is recorded as the environment's state, never raised."""
    now = now or timezone.now()
    if not environment.worker_script_name:
        return
    if environment.deployments_retry_at and now < environment.deployments_retry_at:
        return
    client = DeploymentsClient(
        base_url=settings.CLOUDFLARE_API_BASE_URL,
        token=settings.CLOUDFLARE_API_TOKEN,
        account_id=environment.cloudflare_account_id,
        client=shared_client(settings.HTTP_TIMEOUT_SECONDS),
    )
    try:
        result = client.deployments(environment.worker_script_name)
    except DeploymentsError as error:
        result = error
    deployments.record_read(environment, result, now=timezone.now())
