"""The on-demand sample end to end: the button's POST → Redis → a real Celery worker process →
the edge stand-in → the row, on PostgreSQL."""

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
