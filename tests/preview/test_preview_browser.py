"""The suite in real Chromium: start it from the preview page, watch it complete, download the
report — against the live server, a real Celery worker and the edge stand-in."""

import json

import pytest
from playwright.sync_api import expect

from tests.preview.conftest import MONITORING_TOKEN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_run_the_suite_watch_it_complete_and_download_the_report(
    live_server, open_page, start_worker, preview_adopted, release_manager, edge_limits
):
    start_worker(env={"EDGE_PROBE_HEADERS": json.dumps({"X-Monitoring-Token": MONITORING_TOKEN})})
    rita = open_page(release_manager)
    rita.goto(f"{live_server.url}/environments/{preview_adopted.public_id}/")
    rita.fill("#id_build", "deployment-abc123")
    rita.click("#run-suite-button")

    rita.wait_for_url("**/preview-runs/*/")
    checks = rita.locator("#preview-checks")
    expect(checks.locator("tr.check")).to_have_count(6)
    expect(rita.locator("#decision")).to_have_text("GO", timeout=30_000)
    expect(checks.locator("tr.check-passed")).to_have_count(6)
    expect(checks.locator("[data-check=rate_limit]")).to_contain_text("429 after 10 requests")
    # Finished: the fragment no longer polls.
    assert checks.get_attribute("hx-trigger") is None

    with rita.expect_download() as download_info:
        rita.click("#markdown-link")
    download = download_info.value
    assert download.suggested_filename.startswith("preview-report-pix-immo-api-")
    with open(download.path(), encoding="utf-8") as report:
        text = report.read()
    assert "**Build:** deployment-abc123" in text and "**Tester:** rita" in text
    assert "| Rate limiting | ✅ PASS | 429 after 10 requests" in text
    assert "**GO**" in text and "## Next steps" in text

    rita.click("#report-link")
    expect(rita.locator("#preview-report #decision")).to_have_text("GO")
