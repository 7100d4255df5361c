from django.core.management.base import BaseCommand, CommandError

from rollout.services import audit_checkpoints
from rollout.services.audit import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit trail: the keyed hash chain (naming the entry where it breaks) and the "
        "table against the latest checkpoint of its head outside the database (deleted newest "
        "entries, truncation)."
    )

    def handle(self, *args, **options):
        report = verify_chain()
        problems = []
        if not report.intact:
            problems.append(
                f"audit chain broken at entry #{report.broken_at}: {report.why} ({report.checked}"
                " entries before it are intact)"
            )
        if not audit_checkpoints.targets_configured():
            self.stdout.write(
                self.style.WARNING(
                    "no checkpoint target configured (AUDIT_CHECKPOINT_FILE, "
                    "AUDIT_CHECKPOINT_BUCKET): deleted newest entries and truncation cannot be "
                    "detected"
                )
            )
        try:
            checkpoints = audit_checkpoints.latest_checkpoints()
        except audit_checkpoints.CheckpointUnreadable as exc:
            checkpoints = []
            problems.append(f"could not read the checkpoints: {exc}")
        for checkpoint in checkpoints:
            if problem := audit_checkpoints.compare(checkpoint):
                problems.append(problem)
        if report.legacy:
            self.stdout.write(
                f"{report.legacy} legacy entries (plain SHA-256, written before the chain was "
                "keyed)"
            )
        if problems:
            raise CommandError("\n".join(problems))
        against = ", ".join(
            f"#{item.entry_id} checkpointed at {item.checkpointed_at}" for item in checkpoints
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain intact: {report.checked} entries verified"
                + (f"; matches checkpoint {against}" if against else "")
            )
        )
