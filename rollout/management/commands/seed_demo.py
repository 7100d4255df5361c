"""Demo data: pix-immo-api with preview and production, the runbook's plan, one user per role.

The passwords printed here are for the local demo only.
"""

from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from rollout import roles
from rollout.models import Environment, Phase, RolloutPlan, Service

PLAN = [("B2a", 10, 24), ("B2b", 25, 48), ("B2c", 50, 48), ("B3", 100, 0)]
# The Worker script of each environment, whose live version the dashboard reads (scripts/demo
# starts the edge stand-in with both).
WORKER_SCRIPTS = {"preview": "pix-immo-api-preview", "production": "pix-immo-api"}
USERS = [
    ("viewer", roles.VIEWER),
    ("release", roles.RELEASE_MANAGER),
    ("techlead", roles.TECH_LEAD),
    ("devops", roles.DEVOPS),
    ("admin", roles.ADMIN),
]


class Command(BaseCommand):
    help = "Create the demo service, plan, environments and one user per role (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--edge-url", default="http://127.0.0.1:8787", help="Base URL of the edge stand-in"
        )
        parser.add_argument("--account", default="demo-account")
        parser.add_argument(
            "--password", default="demo-pass-2026", help="Password given to every demo user"
        )

    @transaction.atomic
    def handle(self, *args, edge_url, account, password, **options):
        service, _ = Service.objects.get_or_create(
            name="pix-immo-api",
            defaults={
                "description": "Native handlers behind the edge worker",
                # The build on preview that goes to production next: the demo's rollout is of it.
                "current_build": "2026.12.1",
            },
        )
        for name in (Environment.PREVIEW, Environment.PRODUCTION):
            Environment.objects.update_or_create(
                service=service,
                name=name,
                defaults={
                    "cloudflare_account_id": account,
                    "kv_namespace_id": f"{name}-namespace",
                    "qa_url": f"{edge_url.rstrip('/')}/{name}/api/qa",
                    "worker_script_name": WORKER_SCRIPTS[name],
                },
            )
        plan, _ = RolloutPlan.objects.get_or_create(service=service, defaults={"name": "B2 canary"})
        for position, (tag, percent, hours) in enumerate(PLAN, start=1):
            Phase.objects.update_or_create(
                plan=plan,
                position=position,
                defaults={
                    "tag": tag,
                    "percent": percent,
                    "min_observation": timedelta(hours=hours),
                },
            )
        for username, role in USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
            user.is_staff = role == roles.ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready: pix-immo-api, plan "
                + " → ".join(f"{tag} {percent}%" for tag, percent, _ in PLAN)
            )
        )
        for username, role in USERS:
            self.stdout.write(f"  {username:<10} {password}   ({role})")
