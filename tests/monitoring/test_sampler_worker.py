"""The on-demand sample end to end: the button's POST → Redis → a real Celery worker process →
the edge stand-in → the row, on PostgreSQL."""

import re

import pytest
from django.urls import reverse

from monitoring.models import CohortSample
from tests.conftest import client_for, wait_for
from tests.monitoring.conftest import write_plan

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_sample_now_is_taken_by_a_worker(edge, production, release_manager, start_worker):
    write_plan(production)
    start_worker(env={"COHORT_SAMPLE_SIZE": "60"})
    client = client_for(release_manager)
    url = reverse("monitoring:sample_now", args=[production.public_id])
    assert client.post(url, headers={"HX-Request": "true"}).status_code == 200

    sample = CohortSample.objects.get(environment=production)
    wait_for(
        lambda: CohortSample.objects.get(pk=sample.pk).state == "done",
        timeout=20,
        message="the worker to take the sample",
    )
    sample.refresh_from_db()
    assert sample.native + sample.proxy == 100  # the size chosen when the button was pressed
    assert sample.verdict in ("pass", "fail") and sample.p_value is not None
    panel = client.get(reverse("monitoring:cohort_panel", args=[production.public_id]))
    assert f"<strong data-native>{sample.native}</strong>".encode() in panel.content


def test_a_running_sample_shows_its_progress(
    edge, production, release_manager, start_worker, settings
):
    """Paced by a small budget (3 probes a second), a sample of 30 runs for about ten seconds:
    the panel shows "n of 30, about T s left" meanwhile, and the edge never says 429."""
    write_plan(production)
    settings.COHORT_SAMPLE_SIZE = 30
    start_worker(
        env={
            "EDGE_REQUEST_BUDGET": "4",
            "EDGE_REQUEST_BUDGET_RESERVED": "1",
            "EDGE_REQUEST_BUDGET_WINDOW_SECONDS": "1",
        }
    )
    client = client_for(release_manager)
    client.post(reverse("monitoring:sample_now", args=[production.public_id]))
    sample = CohortSample.objects.get(environment=production)
    running = wait_for(
        lambda: CohortSample.objects.filter(
            pk=sample.pk, state="running", probed__gt=0, probed__lt=30
        ).first(),
        timeout=20,
        message="the sample to record progress mid-way",
    )
    panel = client.get(reverse("monitoring:cohort_panel", args=[production.public_id]))
    text = panel.content.decode()
    assert re.search(r"<strong>\d+ of 30</strong> fresh clients, about \d+ s left", text), text
    assert running.expected_seconds == pytest.approx(10.0)
    wait_for(
        lambda: CohortSample.objects.get(pk=sample.pk).state == "done",
        timeout=30,
        message="the sample to finish",
    )
    sample.refresh_from_db()
    assert sample.answered == 30 and sample.rate_limited == 0 and sample.probed == 30
