"""Company login in real Chromium against a real OpenID Connect provider (node-oidc-provider on
127.0.0.1): a tech lead of the company signs in, signs a GO as tech lead, and signs out at the
provider too."""

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from rollout.models import Signature
from tests.support.oidc_provider import PASSWORDS
from tests.test_browser_signoff import (  # noqa: F401  (run is a fixture)
    attest_all,
    phase_url,
    run,
    sign_on_page,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in_at_the_provider(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with your company account").click()
    expect(page.get_by_role("heading")).to_have_text("Test company sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()


def test_a_tech_lead_of_the_company_signs_in_signs_a_decision_and_signs_out(
    live_server,
    company_login,
    run,  # noqa: F811
    page,
):
    sign_in_at_the_provider(page, live_server, "tessa")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("header .who")).to_contain_text("tessa · viewer · tech lead")

    # The attestations no metric covers, given already; the signature is the subject here.
    attest_all(run, User.objects.get(username="tessa"))
    page.goto(phase_url(live_server, run))
    expect(page.locator("#recommendation")).to_have_text("GO")
    assert sign_on_page(page, "Tech lead") == 200
    expect(page.locator("#decision-success")).to_have_text(
        "Signed GO as Tech lead: it takes effect with the second signature."
    )
    (signature,) = Signature.objects.filter(decision__phase_run=run)
    assert (signature.signer.username, signature.role) == ("tessa", Signature.Role.TECH_LEAD)

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")


def test_a_person_with_no_role_sees_whom_to_ask_not_an_empty_dashboard(
    live_server, company_login, page, settings
):
    settings.OIDC_NO_ROLE_CONTACT = "#platform-team"
    sign_in_at_the_provider(page, live_server, "nora")

    expect(page.get_by_role("heading", level=1)).to_have_text("You have no role here")
    expect(page.get_by_role("alert")).to_contain_text("Ask #platform-team")
    expect(page.locator("header nav")).to_have_count(0)
