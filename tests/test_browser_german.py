"""A German-speaking team in real Chromium: the header's switcher, the environment page and the
emergency stop (NOT-AUS) with its confirmation, against the live server and a real worker."""

import json
import re

import pytest
from playwright.sync_api import expect

from rollout.models import Preferences
from tests import test_browser_controls
from tests.conftest import NAMESPACES
from tests.test_browser_controls import environment_url, press_and_confirm

# The controls' fixture: production with its first config written by a real worker, in effect.
production_in_effect = test_browser_controls.production_in_effect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_the_environment_page_and_the_emergency_stop_in_german(
    live_server,
    open_page,
    production_in_effect,
    devops,
    edge,
):
    dana = open_page(devops)
    dana.goto(environment_url(live_server, production_in_effect))
    expect(dana.locator("#controls h2")).to_have_text("Controls")

    dana.select_option("form.language select", "de")
    dana.click("form.language input[type=submit]")
    expect(dana.locator("html")).to_have_attribute("lang", "de")
    assert dana.url == environment_url(live_server, production_in_effect)
    assert Preferences.objects.get(user=devops).language == "de"
    expect(dana.locator("#controls h2")).to_have_text("Steuerung")
    expect(dana.locator("#emergency-button")).to_have_text("NOT-AUS")
    expect(dana.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"Anfangswert.*wirksam", re.S)
    )

    press_and_confirm(
        dana,
        "#emergency-button",
        "production: NOT-AUS — 100% des Traffics sofort zum Proxy",
        "NOT-AUS ganz vorne eingereiht",
    )
    expect(dana.locator(".banner")).to_have_text(
        "NOT-AUS AKTIV: 100% des Traffics gehen zum Proxy.", timeout=10_000
    )
    expect(dana.locator("#environment-status table.changes tr").nth(1)).to_contain_text(
        re.compile(r"NOT-AUS.*wirksam", re.S), timeout=20_000
    )
    assert json.loads(edge.kv_value(NAMESPACES["production"]))["emergency_proxy"] is True
