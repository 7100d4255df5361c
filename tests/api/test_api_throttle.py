"""Each token has its own request rate: past it, 429 with Retry-After, audited once a window."""

import pytest

from api.auth import parse_rate
from rollout.models import AuditEntry
from tests.api.conftest import assert_problem, token_of


def test_past_its_rate_a_token_gets_429_with_retry_after(api, viewer, release_manager, settings):
    settings.API_RATE_LIMIT = "3/hour"
    vera = api(token_of(viewer))
    # Seven requests span at most two windows, so one window sees more than three.
    answers = [vera.get("/whoami") for _ in range(7)]
    throttled = [answer for answer in answers if answer.status_code == 429]
    assert throttled, [answer.status_code for answer in answers]
    body = assert_problem(throttled[0], 429)
    wait = int(throttled[0].headers["retry-after"])
    assert 1 <= wait <= 3600 and body["retry_after"] == wait
    entries = AuditEntry.objects.filter(action="api.throttled")
    assert 1 <= entries.count() <= 2  # once per window, not once per refused request
    assert entries.first().actor == viewer and entries.first().via.startswith("token pipeline")
    # Another token has a rate of its own.
    assert api(token_of(release_manager)).get("/whoami").status_code == 200


def test_the_rate_is_read_strictly():
    assert parse_rate("120/min") == (120, 60)
    assert parse_rate("5/s") == (5, 1)
    for wrong in ("120", "many/min", "120/fortnight", ""):
        with pytest.raises(ValueError, match="API_RATE_LIMIT"):
            parse_rate(wrong)
