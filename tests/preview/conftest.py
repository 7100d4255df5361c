"""Fixtures for the preview suite and the pre-flight: a preview (and production) environment of
the edge stand-in with its config in KV and at the edge, the rate limit on (10 per 10 s, as the
worker), a monitoring token the stand-in exempts from it, and the runbook's plan."""

import json
import time
from datetime import timedelta

import pytest

from integrations.kv_value import CanarySettings, read_settings
from rollout.models import ConfigChange, DesiredConfig, Phase, RolloutPlan
from rollout.services import controls
from rollout.services import preview as preview_suite
from tests.conftest import make_environment

MONITORING_TOKEN = "preview-suite-monitoring-token-5e1"
B2A = CanarySettings(10, "B2a", False)
PLAN = [("B2a", 10, 24), ("B2b", 25, 48), ("B2c", 50, 48), ("B3", 100, 0)]


@pytest.fixture
def edge_limits(edge, settings):
    """The stand-in's edge rate limit as the real worker's, with our monitoring token exempt."""
    edge.knobs(rate_limit=10, rate_window=10, exempt_token=MONITORING_TOKEN)
    settings.EDGE_PROBE_HEADERS = {"X-Monitoring-Token": MONITORING_TOKEN}
    return edge


def settle(change: ConfigChange, timeout: float = 15.0) -> ConfigChange:
    """Drive a change into KV and to the edge in this process; fail the test if it does not."""
    change = preview_suite.drive(change.pk, until=time.monotonic() + timeout)
    assert change.state == ConfigChange.State.IN_EFFECT, (change.state, change.last_error)
    return change


def with_config(edge, environment, settings: CanarySettings = B2A):
    """The runbook's KV setup done by hand before the dashboard was connected: the value is in
    KV and at the edge, and the dashboard adopts it as version 1. (No API write now, so the
    suite's first write is not refused as a second write of the key within a second.)"""
    edge.put_external(environment.name, json.dumps(settings.as_dict()))
    controls.adopt_existing_config(environment=environment, settings=settings, system="test")
    return environment


def add_plan(service):
    plan, _ = RolloutPlan.objects.get_or_create(service=service, defaults={"name": "B2 canary"})
    for position, (tag, percent, hours) in enumerate(PLAN, start=1):
        Phase.objects.get_or_create(
            plan=plan,
            position=position,
            defaults={"tag": tag, "percent": percent, "min_observation": timedelta(hours=hours)},
        )
    return plan


@pytest.fixture
def preview_adopted(edge_limits):
    """Preview with 10 % / B2a in KV and at the edge, adopted as version 1, and the plan."""
    environment = with_config(edge_limits, make_environment(edge_limits, name="preview"))
    add_plan(environment.service)
    return environment


@pytest.fixture
def production_adopted(edge_limits):
    """Production as ``preview_adopted``."""
    environment = with_config(edge_limits, make_environment(edge_limits, name="production"))
    add_plan(environment.service)
    return environment


def desired_settings(environment) -> CanarySettings:
    return DesiredConfig.objects.get(environment=environment).settings


def kv_settings(edge, name="preview") -> CanarySettings | None:
    return read_settings(edge.kv_value(name))


def kv_document(edge, name="preview") -> dict:
    return json.loads(edge.kv_value(name))


def run_now(environment, person, build="deploy-abc123"):
    """A run recorded as the view records it, executed in this process."""
    run = preview_suite.create_run(environment=environment, build=build, started_by=person)
    preview_suite.execute(run.pk)
    run.refresh_from_db()
    return run


def outcomes(run) -> dict:
    return {check.name: check.state for check in run.checks.all()}
