"""Point every environment of a service at a local Logpush directory (the embedded demo), where
``python -m edge_standin --logpush-dir DIR`` writes each edge's files under ``DIR/<env>/``."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metrics.models import LogSource
from rollout.models import Service


class Command(BaseCommand):
    help = "Create (or update) a directory log source per environment of SERVICE (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("service", nargs="?", default="pix-immo-api")
        parser.add_argument(
            "--directory",
            default=str(settings.VAR_DIR / "logpush"),
            help="the stand-in's --logpush-dir (default: var/logpush)",
        )

    def handle(self, *args, service, directory, **options):
        found = Service.objects.filter(name=service).first()
        if found is None:
            raise CommandError(f"no service {service!r}")
        root = Path(directory).resolve()
        for environment in found.environments.all():
            path = root / environment.name
            path.mkdir(parents=True, exist_ok=True)
            LogSource.objects.update_or_create(
                environment=environment,
                defaults={"kind": LogSource.Kind.DIRECTORY, "directory": str(path), "bucket": ""},
            )
            self.stdout.write(f"{environment}: logs from {path}")
