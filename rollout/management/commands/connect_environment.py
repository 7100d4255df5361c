"""Connect an environment from the command line: the runbook's KV setup script, audited.

Checks the API token and the namespace; adopts a valid existing ``config`` value, or writes the
initial value through the normal config path when the key is missing.
"""

from django.core.management.base import BaseCommand, CommandError

from integrations.kv_value import CanarySettings
from rollout.forms.environments import InitialConfigForm
from rollout.models import DesiredConfig, Environment
from rollout.services import controls
from rollout.services.environments import check_connection


class Command(BaseCommand):
    help = "Check an environment's Cloudflare connection and set up its KV config."

    def add_arguments(self, parser):
        parser.add_argument("service")
        parser.add_argument("environment", choices=[Environment.PREVIEW, Environment.PRODUCTION])
        parser.add_argument("--initial-percent", default="0")
        parser.add_argument("--initial-tag", default="")
        parser.add_argument("--reason", default="Initial KV value written on connection")

    def handle(self, *args, service, environment, initial_percent, initial_tag, reason, **opts):
        env = Environment.objects.filter(service__name=service, name=environment).first()
        if env is None:
            raise CommandError(f"no environment {service}/{environment}")
        result = check_connection(env, system="manage.py connect_environment")
        for label, ok, message in result.steps:
            self.stdout.write(f"  {'✓' if ok else '✗'} {label}: {message}")
        if not result.ok:
            raise CommandError(f"{env}: connection check failed")
        if DesiredConfig.objects.filter(environment=env).exists():
            self.stdout.write(f"{env}: already has a desired config; nothing written")
            return
        if result.kv_state == "valid":
            controls.adopt_existing_config(
                environment=env, settings=result.kv_settings, system="manage.py connect_environment"
            )
            self.stdout.write(f"{env}: adopted {result.kv_settings.describe()} from KV")
            return
        form = InitialConfigForm(
            data={"canary_percent": initial_percent, "canary_tag": initial_tag, "reason": reason}
        )
        if not form.is_valid():
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            raise CommandError(f"bad initial value: {problems}")
        settings_: CanarySettings = form.canary_settings()
        controls.create_initial_config(
            environment=env,
            settings=settings_,
            reason=form.cleaned_data["reason"],
            system="manage.py connect_environment",
        )
        self.stdout.write(f"{env}: initial value {settings_.describe()} queued for writing")
