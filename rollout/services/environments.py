"""Connecting an environment: the runbook's KV setup script, as checks with clear answers."""

from dataclasses import dataclass, field

from django.utils import timezone

from integrations.cloudflare_kv import KVError
from integrations.kv_value import CanarySettings, read_settings

from ..kv_writer import kv_client_for
from ..models import AuditEntry, Environment
from . import audit


@dataclass
class ConnectionCheck:
    steps: list = field(default_factory=list)  # (label, ok, message)
    kv_raw: str | None = None
    kv_settings: CanarySettings | None = None

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.steps)

    @property
    def kv_state(self) -> str:
        if not self.ok:
            return "unknown"
        if self.kv_raw is None:
            return "missing"
        return "valid" if self.kv_settings else "invalid"


def check_connection(
    environment: Environment, *, actor=None, system: str = "setup", request=None
) -> ConnectionCheck:
    """Token, namespace, then the ``config`` key. Stops at the first failing step."""
    result = ConnectionCheck()
    with kv_client_for(environment) as kv:
        for label, call in (
            ("API token", kv.verify_token),
            ("KV namespace", kv.get_namespace),
            ("config key", kv.get_value),
        ):
            try:
                answer = call()
            except KVError as exc:
                result.steps.append((label, False, exc.message))
                break
            if label == "config key":
                result.kv_raw = answer.decode("utf-8", "replace") if answer is not None else None
                result.kv_settings = read_settings(answer)
                message = {None: "missing: no config written yet"}.get(answer, "present")
                result.steps.append((label, True, message))
            elif label == "KV namespace":
                result.steps.append((label, True, f"{answer.title or answer.id}"))
            else:
                result.steps.append((label, True, "active"))
    if result.ok:
        Environment.objects.filter(pk=environment.pk).update(
            connected_at=timezone.now(), connection_error=""
        )
    else:
        failed = next(f"{label}: {message}" for label, ok, message in result.steps if not ok)
        Environment.objects.filter(pk=environment.pk).update(connection_error=failed)
    environment.refresh_from_db()
    audit.record(
        action="environment.connection_checked",
        actor=actor,
        system="" if actor else system,
        environment=environment,
        obj=environment,
        outcome=AuditEntry.Outcome.OK if result.ok else AuditEntry.Outcome.FAILED,
        detail="; ".join(
            f"{label}: {'ok' if ok else message}" for label, ok, message in result.steps
        ),
        request=request,
    )
    return result
