from django.core.management.base import BaseCommand, CommandError

from rollout.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; names the first broken entry."

    def handle(self, *args, **options):
        checked, broken_id, why = verify_chain()
        if broken_id is not None:
            raise CommandError(
                f"audit chain broken at entry #{broken_id}: {why} ({checked} entries before it "
                "are intact)"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} entries verified"))
