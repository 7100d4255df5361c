"""Demo only: a production rollout whose B2a window is nearly over, with a day of Logpush traffic
behind it, so the embedded demo shows a decision coming due without waiting 24 hours.

The window is backdated (its start says so in the audit trail); the traffic is written by the
edge stand-in at its current routing and ingested by the demo's worker like any other logs. Its
check-ins are recorded now, so those whose slots closed before the seeding are elapsed, not
missed (no one could have done them); T+12 h is due until the window ends.

Run again on a restart of the demo, it re-times the seeded rollout while no person has acted on
it (no decision, signature, attestation or acknowledged check-in): its window again ends ten
minutes from now, so the decision does not stay due at the old time. The stand-in kept serving
traffic in the meantime (it fills the gap in its Logpush files on start), so the moved window has
its traffic. A rollout a person acted on is left as it is, and the command says so.
"""

import time
from datetime import timedelta

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rollout.models import (
    AuditEntry,
    CheckIn,
    ConfigChange,
    DesiredConfig,
    Environment,
    PhaseAttestation,
    PhaseRun,
    Rollout,
)
from rollout.services import audit, phases

LEFT_OF_WINDOW = timedelta(minutes=10)


class Command(BaseCommand):
    help = "Seed a backdated B2a observation window with a day of traffic (embedded demo only)."

    def add_arguments(self, parser):
        parser.add_argument("service", nargs="?", default="pix-immo-api")
        parser.add_argument("--edge-url", required=True, help="the edge stand-in's base URL")
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the edge")
        parser.add_argument("--directory", help="where the stand-in writes (default: its own)")

    def handle(self, *args, service, edge_url, wait, directory, **options):
        environment = Environment.objects.filter(
            service__name=service, name=Environment.PRODUCTION
        ).first()
        if environment is None or not hasattr(environment.service, "plan"):
            raise CommandError(f"{service} has no production environment with a plan")
        active = phases.active_rollout(environment)
        if active is not None:
            self._retime(active)
            return
        desired = DesiredConfig.objects.filter(environment=environment).first()
        phase = environment.service.plan.phases.filter(
            tag=desired.canary_tag if desired else ""
        ).first()
        if desired is None or phase is None or desired.canary_percent != phase.percent:
            raise CommandError("production is not at a phase of the plan: connect it first")
        client = httpx.Client(base_url=edge_url, timeout=10)
        self._wait_for_edge(client, desired.canary_percent, wait)

        # A healthy native cohort: its latency within 10% of proxy's (the stand-in's default
        # native is slower, which the matrix calls borderline).
        client.post(
            "/_standin/traffic", json={"native": {"latency_ms": 125, "error_rate": 0.002}}
        ).raise_for_status()
        window = phase.min_observation
        now = timezone.now()
        written = client.post(
            "/_standin/logpush/write",
            json={
                "env": environment.name,
                "minutes": (window - LEFT_OF_WINDOW).total_seconds() / 60,
                "end": now.timestamp(),
                "file_minutes": 5,
                "directory": directory,
            },
        )
        written.raise_for_status()
        requests = written.json()["requests"]

        rollout = Rollout.objects.create(
            plan=environment.service.plan,
            environment=environment,
            build=environment.service.current_build,
            created_at=now - window,
            state_changed_at=now - window,
        )
        run = PhaseRun.objects.create(
            rollout=rollout,
            phase=phase,
            started_at=now - window,
            start_change=ConfigChange.objects.filter(environment=environment).first(),
        )
        audit.record(
            action="rollout.created",
            system="seed_demo_rollout",
            environment=environment,
            obj=rollout,
            detail=f"demo data: {run} backdated to have taken effect "
            f"{(window - LEFT_OF_WINDOW).total_seconds() / 3600:g} h ago",
        )
        phases.begin_window(rollout, run, in_effect_at=now - window + LEFT_OF_WINDOW, now=now)
        self.stdout.write(
            f"Seeded {run} on {environment}: window ends in {LEFT_OF_WINDOW}; "
            f"{requests['native']['requests']:,} native and {requests['proxy']['requests']:,} "
            "proxy requests written as Logpush files."
        )

    def _retime(self, rollout):
        runs = list(rollout.phase_runs.all())
        run = runs[0] if len(runs) == 1 else None
        seeded = AuditEntry.objects.filter(
            action="rollout.created",
            actor_label="seed_demo_rollout",
            object_id=str(getattr(rollout, "public_id", None) or rollout.pk),
        ).exists()
        if not seeded or run is None or run.window_ends_at is None or touched_by_a_person(run):
            self.stdout.write(
                f"A rollout is already running ({rollout}): left as it is, nothing seeded."
            )
            return
        now = timezone.now()
        shift = now + LEFT_OF_WINDOW - run.window_ends_at
        if shift < timedelta(minutes=1):  # started again at once: nothing worth moving
            self.stdout.write(f"The demo's {run} still ends at {run.window_ends_at:%H:%M} UTC.")
            return
        with transaction.atomic():
            # A window that came due while the demo was stopped runs again until its new end:
            # the demo data is moved in time, so its decision is not due yet either.
            Rollout.objects.filter(pk=rollout.pk).update(
                created_at=F("created_at") + shift, state_changed_at=F("state_changed_at") + shift
            )
            Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.DECISION_DUE).update(
                state=Rollout.State.OBSERVING
            )
            PhaseRun.objects.filter(pk=run.pk).update(
                started_at=F("started_at") + shift,
                in_effect_at=F("in_effect_at") + shift,
                window_ends_at=F("window_ends_at") + shift,
            )
            PhaseRun.objects.filter(pk=run.pk, state=PhaseRun.State.DECISION_DUE).update(
                state=PhaseRun.State.OBSERVING
            )
            # The check-ins move with it and count as recorded now, as when it was seeded: one
            # whose slot had closed before stays elapsed, never missed, however long the stop.
            CheckIn.objects.filter(phase_run=run).update(
                due_at=F("due_at") + shift,
                missed_after=F("missed_after") + shift,
                recorded_at=now,
                reminded_at=None,
            )
            audit.record(
                action="rollout.retimed",
                system="seed_demo_rollout",
                environment=rollout.environment,
                obj=rollout,
                detail=f"demo data: {run} moved {shift_text(shift)} later after a restart of the "
                f"demo; its window ends in {LEFT_OF_WINDOW}",
            )
        self.stdout.write(
            f"Re-timed the demo's {run} after a restart ({shift_text(shift)} later): "
            f"window ends in {LEFT_OF_WINDOW}."
        )

    def _wait_for_edge(self, client, percent, wait):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                report = client.get("/production/api/qa", headers={"X-Forwarded-For": "10.9.9.9"})
                if report.json()["canary"]["percent"] == percent:
                    return
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
            time.sleep(1)
        raise CommandError(f"the edge did not report {percent}% within {wait:g} s")


def touched_by_a_person(run):
    return (
        run.decisions.exists()
        or PhaseAttestation.objects.filter(phase_run=run).exists()
        or CheckIn.objects.filter(phase_run=run, acknowledged_at__isnull=False).exists()
    )


def shift_text(shift):
    minutes = round(shift.total_seconds() / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
