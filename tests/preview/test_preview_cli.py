"""The preview suite as a pipeline step: `rollout-control preview run --build B --wait` against
the live server, a real Celery worker and the edge stand-in — progress on stderr, the verdict
as the exit code (0 GO, 1 NO-GO), the run's JSON and its report for the job's artefacts."""

import json

import pytest

from rollout.models import PreviewRun
from tests.api.conftest import token_of
from tests.preview.conftest import MONITORING_TOKEN
from tests.support.cli import cli_env, run_cli

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def pipeline(live_server, tmp_path, start_worker, preview_adopted, release_manager):
    """The environment of a CI job: the server's URL and a release manager's token."""
    start_worker(env={"EDGE_PROBE_HEADERS": json.dumps({"X-Monitoring-Token": MONITORING_TOKEN})})
    return cli_env(tmp_path, live_server.url, token_of(release_manager))


def test_a_healthy_preview_is_go_with_exit_0(pipeline):
    result = run_cli("preview", "run", "--build", "deploy-abc123", "--wait", "--json", env=pipeline)

    assert result.code == 0, result.stderr
    run = result.json()
    assert (run["state"], run["verdict"], run["build"]) == ("passed", "GO", "deploy-abc123")
    assert run["progress"] == {"done": 6, "total": 6}
    assert "6/6 checks" in result.stderr  # progress went to stderr, stdout is the JSON
    assert PreviewRun.objects.get().build == "deploy-abc123"

    report = run_cli("preview", "report", run["id"], env=pipeline)
    assert report.code == 0, report.stderr
    assert "deploy-abc123" in report.stdout and "GO" in report.stdout


def test_a_broken_edge_is_no_go_with_exit_1(pipeline, edge_limits):
    edge_limits.knobs(ignore_sticky={"preview": True})

    result = run_cli("preview", "run", "pix-immo-api/preview", "--build", "deploy-bad", "--wait",
                     env=pipeline)  # fmt: skip

    assert result.code == 1, result.stderr
    assert "failed: NO-GO" in result.stdout
    assert "NO-GO for build deploy-bad" in result.stderr
    shown = run_cli("preview", "show", str(PreviewRun.objects.get().public_id), env=pipeline)
    assert shown.code == 1 and "sticky_native" in shown.stdout


def test_without_wait_it_answers_at_once_with_the_run(pipeline):
    result = run_cli("preview", "run", "--build", "deploy-abc123", env=pipeline)

    assert result.code == 0, result.stderr
    run = PreviewRun.objects.get()
    assert f"Preview run {run.public_id} for build deploy-abc123" in result.stdout
