"""`rollout-control phase start` and `phase show` against the live server: the start goes through
the same pre-flight as the page — refused while the checklist is incomplete, and a raise
waits for a second person."""

import pytest

from rollout.models import PercentRequest
from tests.api.conftest import token_of
from tests.preview.test_preflight import complete
from tests.support.cli import cli_env, run_cli

pytestmark = pytest.mark.django_db(transaction=True)
PRODUCTION = "pix-immo-api/production"


@pytest.fixture
def rita(live_server, tmp_path, release_manager):
    return cli_env(tmp_path, live_server.url, token_of(release_manager))


def test_the_next_phase_starts_after_a_complete_preflight(
    rita, preview_adopted, production_adopted, release_manager
):
    complete(preview_adopted, production_adopted, release_manager)

    result = run_cli("phase", "start", PRODUCTION, "--outside-window", "tests run any day",
                     "--yes", "--json", env=rita)  # fmt: skip

    assert result.code == 0, result.stderr
    started = result.json()
    assert (started["phase"], started["percent"]) == ("B2b", 25)
    request = PercentRequest.objects.get()  # a raise: it waits for a second person
    assert started["request"]["id"] == str(request.public_id)

    shown = run_cli("phase", "show", started["id"], env=rita)
    assert shown.code == 0, shown.stderr
    assert "B2b" in shown.stdout


def test_the_start_is_refused_while_the_preflight_is_incomplete(
    rita, preview_adopted, production_adopted
):
    result = run_cli("phase", "start", PRODUCTION, "--outside-window", "any", "--yes", env=rita)

    assert result.code == 1
    assert "pre-flight checklist is incomplete" in result.stderr
    assert PercentRequest.objects.count() == 0
