"""Company login over real HTTP against a real OpenID Connect provider (node-oidc-provider on
127.0.0.1, tests/oidc_provider/): the code flow with PKCE, state and nonce; people created on
their first sign-in; roles from the company's groups at every sign-in; sessions bounded; the
provider's sign-out; and every way a sign-in can fail — each a clear page and an audit entry,
never a 500 and never a session."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from rollout import roles
from rollout.models import AuditEntry, CompanyAccount
from tests.support.oidc_provider import PASSWORDS, provider_answer, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser(live_server):
    with httpx.Client(base_url=live_server.url, timeout=15) as client:
        yield client


def signed_in(client) -> bool:
    """Whether the client's session opens the overview (else it is sent to log in)."""
    return client.get("/").status_code == 200


def role_names(username) -> list[str]:
    user = User.objects.get(username=username)
    return sorted(user.groups.values_list("name", flat=True))


def failure(action="auth.company_sign_in_failed") -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(action=action)
    return entry


# --- signing in --------------------------------------------------------------------------------


def test_a_tech_lead_signs_in_and_is_created_with_name_email_and_role(company_login, browser):
    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 302 and response.headers["location"] == "/"
    assert signed_in(browser)
    tessa = User.objects.get(username="tessa")
    assert (tessa.email, tessa.first_name, tessa.last_name) == (
        "tessa@example.com",
        "Tessa",
        "Lind",
    )
    assert not tessa.has_usable_password()
    assert role_names("tessa") == [roles.TECH_LEAD, roles.VIEWER]
    account = CompanyAccount.objects.get(user=tessa)
    assert (account.issuer, account.subject) == (company_login.issuer, "tessa")
    created = AuditEntry.objects.get(action="person.created")
    assert created.after == {
        "username": "tessa",
        "email": "tessa@example.com",
        "first_name": "Tessa",
        "last_name": "Lind",
    }
    changed = AuditEntry.objects.get(action="person.roles_changed")
    assert (changed.before, changed.after) == ({"roles": []}, {"roles": ["viewer", "tech lead"]})
    assert changed.actor_label == "company login" and "rollout-tech-leads" in changed.detail
    assert AuditEntry.objects.get(action="auth.signed_in").actor == tessa


def test_the_provider_is_asked_with_pkce_state_and_nonce(company_login, browser):
    start = browser.get("/oidc/authenticate/")
    query = parse_qs(urlsplit(start.headers["location"]).query)

    assert start.headers["location"].startswith(f"{company_login.issuer}/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["scope"] == ["openid email profile groups"]


def test_a_second_sign_in_is_the_same_person(company_login, browser, live_server):
    sign_in(browser, "tessa", PASSWORDS["tessa"])
    with httpx.Client(base_url=live_server.url, timeout=15) as laptop:
        sign_in(laptop, "tessa", PASSWORDS["tessa"])
        assert signed_in(laptop)

    assert User.objects.filter(username="tessa").count() == 1
    assert AuditEntry.objects.filter(action="person.roles_changed").count() == 1
    assert AuditEntry.objects.filter(action="auth.signed_in").count() == 2


def test_removal_from_a_group_demotes_at_the_next_sign_in(company_login, browser, live_server):
    sign_in(browser, "dora", PASSWORDS["dora"])
    assert role_names("dora") == [roles.DEVOPS, roles.VIEWER]

    company_login.set_groups("dora", ["engineering"])
    with httpx.Client(base_url=live_server.url, timeout=15) as again:
        assert sign_in(again, "dora", PASSWORDS["dora"]).status_code == 302

    assert role_names("dora") == [roles.VIEWER]
    assert not User.objects.get(username="dora").has_perm("rollout.emergency_stop")
    demoted = AuditEntry.objects.filter(action="person.roles_changed").order_by("id").last()
    assert (demoted.before, demoted.after) == (
        {"roles": ["viewer", "devops"]},
        {"roles": ["viewer"]},
    )


def test_the_admin_group_opens_the_admin_pages_and_losing_it_closes_them(
    company_login, browser, live_server
):
    company_login.set_groups("dora", ["rollout-admins"])
    sign_in(browser, "dora", PASSWORDS["dora"])
    assert User.objects.get(username="dora").is_staff

    company_login.set_groups("dora", ["engineering"])
    with httpx.Client(base_url=live_server.url, timeout=15) as again:
        sign_in(again, "dora", PASSWORDS["dora"])
    assert not User.objects.get(username="dora").is_staff


def test_a_person_with_no_mapped_group_is_told_whom_to_ask(company_login, browser, settings):
    settings.OIDC_NO_ROLE_CONTACT = "#platform-team"

    response = sign_in(browser, "nora", PASSWORDS["nora"])

    assert response.status_code == 403
    assert "You have no role here" in response.text
    assert "Ask #platform-team to add you to a group" in response.text
    assert not signed_in(browser)
    assert not User.objects.filter(username="nora").exists()
    refused = failure("auth.no_role")
    assert refused.outcome == "refused" and refused.actor_label == "company login"
    assert refused.detail.startswith("nora (nora@example.com), groups marketing: None of your")


def test_removal_from_every_group_takes_the_roles_and_the_session(
    company_login, browser, live_server
):
    sign_in(browser, "dora", PASSWORDS["dora"])
    company_login.set_groups("dora", ["marketing"])

    response = sign_in(browser, "dora", PASSWORDS["dora"])

    assert response.status_code == 403 and "You have no role here" in response.text
    assert role_names("dora") == []
    assert not signed_in(browser)


def test_a_company_session_ends_after_its_maximum_age(company_login, browser, settings):
    settings.OIDC_SESSION_MAX_AGE_SECONDS = 600
    sign_in(browser, "tessa", PASSWORDS["tessa"])
    with time_machine.travel(timezone.now() + timedelta(seconds=590), tick=True):
        assert signed_in(browser)
    with time_machine.travel(timezone.now() + timedelta(seconds=610), tick=True):
        response = browser.get("/")
    assert response.status_code == 302 and response.headers["location"].startswith("/login/")
    assert not signed_in(browser)


def test_signing_out_ends_the_session_here_and_at_the_provider(company_login, browser, live_server):
    sign_in(browser, "tessa", PASSWORDS["tessa"])
    browser.get("/")

    response = browser.post("/logout/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]})

    assert response.status_code == 302
    end = urlsplit(response.headers["location"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == f"{company_login.issuer}/session/end"
    query = parse_qs(end.query)
    assert query["post_logout_redirect_uri"] == [f"{live_server.url}/login/"]
    assert query["id_token_hint"][0].count(".") == 2
    assert not signed_in(browser)
    # The provider accepts the request: its page asks to confirm the sign-out.
    confirm = browser.get(response.headers["location"])
    assert confirm.status_code == 200 and "sign-out" in confirm.text


# --- what goes wrong ---------------------------------------------------------------------------


def test_an_answer_with_a_wrong_state_is_refused(company_login, browser):
    answer = provider_answer(browser, "tessa", PASSWORDS["tessa"])
    code = parse_qs(urlsplit(answer).query)["code"][0]

    response = browser.get("/oidc/callback/", params={"code": code, "state": "forged-state"})

    assert response.status_code == 400
    assert "does not belong to a sign-in started in this browser" in response.text
    assert not signed_in(browser)
    assert failure().outcome == "refused"


def test_a_replayed_answer_in_the_same_browser_is_refused(company_login, browser):
    answer = provider_answer(browser, "tessa", PASSWORDS["tessa"])
    assert browser.get(answer).status_code == 302
    browser.post("/logout/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]})

    replay = browser.get(answer)

    assert replay.status_code == 400 and "was used already" in replay.text
    assert not signed_in(browser)


def test_a_stolen_code_is_refused_by_the_provider_in_another_browser(
    company_login, browser, live_server
):
    """The attacker has a sign-in of their own under way (a state in their session) and swaps in
    the code they stole: the provider refuses it (used already, and not their PKCE verifier)."""
    answer = provider_answer(browser, "tessa", PASSWORDS["tessa"])
    browser.get(answer)
    stolen = parse_qs(urlsplit(answer).query)["code"][0]
    with httpx.Client(base_url=live_server.url, timeout=15) as attacker:
        own = parse_qs(urlsplit(attacker.get("/oidc/authenticate/").headers["location"]).query)
        response = attacker.get("/oidc/callback/", params={"code": stolen, "state": own["state"]})
        assert not signed_in(attacker)

    assert response.status_code == 400
    assert "refused the sign-in code" in response.text and "invalid_grant" in response.text
    assert failure().detail.startswith("The company sign-in refused the sign-in code")


@pytest.mark.parametrize(
    "mode, says",
    [
        ("expired", "The ID token has expired."),
        ("wrong_key", "The ID token&#x27;s signature does not match the provider&#x27;s"),
        ("wrong_issuer", "The ID token was not issued by http://127.0.0.1:"),
        ("wrong_audience", "The ID token was issued for another client."),
        ("wrong_nonce", "could not be verified: JWT Nonce verification failed."),
    ],
)
def test_an_id_token_that_cannot_be_trusted_is_refused(company_login, browser, mode, says):
    company_login.misbehave(id_token=mode)

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 403
    assert "Company sign-in failed" in response.text and says in response.text
    assert not signed_in(browser)
    assert not User.objects.filter(username="tessa").exists()
    assert failure().outcome == "refused"


def test_the_provider_saying_no_is_shown(company_login, browser):
    start = browser.get("/oidc/authenticate/")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]

    response = browser.get(
        "/oidc/callback/",
        params={
            "error": "access_denied",
            "error_description": "the person cancelled",
            "state": state,
        },
    )

    assert response.status_code == 400
    assert "did not sign you in: access_denied (the person cancelled)" in response.text
    assert failure().outcome == "refused"


def test_a_provider_that_cannot_be_reached_is_named_and_break_glass_mentioned(
    company_login, browser, settings
):
    settings.OIDC_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    settings.BREAK_GLASS_ACCOUNTS = ["oncall-breakglass"]

    response = browser.get("/oidc/authenticate/")

    assert response.status_code == 502
    assert "The company sign-in cannot be reached." in response.text
    assert "a break-glass account can still log in" in response.text
    assert failure().outcome == "failed"


def test_a_wrong_discovery_url_is_named(company_login, browser, settings):
    settings.OIDC_DISCOVERY_URL = f"{company_login.issuer}/no-such-document"

    response = browser.get("/oidc/authenticate/")

    assert response.status_code == 502
    assert "discovery document could not be read (HTTP 404 from" in response.text
    assert failure().outcome == "failed"


def test_a_wrong_client_secret_is_named(company_login, browser, settings):
    settings.OIDC_RP_CLIENT_SECRET = "not-the-secret"

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 502
    assert "does not accept this dashboard&#x27;s client id or secret" in response.text
    assert not signed_in(browser)
    assert failure().outcome == "failed"


def test_a_provider_that_drops_the_code_exchange_is_named(company_login, browser):
    company_login.misbehave(token_down=True)

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 502 and "cannot be reached" in response.text
    assert not signed_in(browser)
    assert failure().outcome == "failed"


def test_a_slow_provider_is_given_up_on(company_login, browser, settings):
    company_login.misbehave(token_delay_ms=int(settings.OIDC_TIMEOUT * 1000) + 2000)

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 504
    assert f"did not answer within {settings.OIDC_TIMEOUT:g} seconds" in response.text
    assert not signed_in(browser)
    assert failure().outcome == "failed"


def test_a_groups_claim_that_is_no_list_is_refused(company_login, browser):
    company_login.set_groups("tessa", {"rollout-admins": True})

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 403
    assert "&#x27;groups&#x27; claim is not a list of groups" in response.text
    assert not User.objects.filter(username="tessa").exists()
    assert failure().outcome == "refused"


def test_an_answer_without_code_is_refused(company_login, browser):
    response = browser.get("/oidc/callback/", params={"state": "x"})
    assert response.status_code == 400 and "lacks its code or state" in response.text
    assert failure().outcome == "refused"


def test_a_local_account_of_the_same_name_is_not_taken_over(company_login, browser, tech_lead):
    """theo's local account exists; the provider's theo is someone the dashboard has not met."""
    company_login.set_groups("tessa", ["rollout-admins"])
    tech_lead.username = "tessa"
    tech_lead.save()

    response = sign_in(browser, "tessa", PASSWORDS["tessa"])

    assert response.status_code == 409
    assert "An account named &#x27;tessa&#x27; already exists here" in response.text
    assert not signed_in(browser)
    assert role_names("tessa") == [roles.TECH_LEAD]
    assert not CompanyAccount.objects.exists()


def test_a_person_switched_off_here_cannot_sign_in(company_login, browser, live_server):
    sign_in(browser, "tessa", PASSWORDS["tessa"])
    User.objects.filter(username="tessa").update(is_active=False)

    assert not signed_in(browser)
    with httpx.Client(base_url=live_server.url, timeout=15) as again:
        response = sign_in(again, "tessa", PASSWORDS["tessa"])
    assert response.status_code == 403 and "switched off" in response.text


def test_without_a_discovery_url_there_is_no_company_login(browser, settings):
    settings.OIDC_DISCOVERY_URL = ""
    assert browser.get("/oidc/authenticate/").status_code == 404
    assert browser.get("/oidc/callback/").status_code == 404
    assert 'id="company-login"' not in browser.get("/login/").text


# --- configuration mistakes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, check",
    [
        ({"OIDC_RP_CLIENT_SECRET": ""}, "E620"),
        ({"OIDC_ROLE_GROUPS": {"tech lead": "rollout-tech-leads"}}, "E621"),
        ({"OIDC_ROLE_GROUPS": {"techlead": ["rollout-tech-leads"]}}, "E622"),
        ({"LOCAL_PASSWORD_LOGIN": False, "BREAK_GLASS_ACCOUNTS": []}, "W623"),
        ({"LOCAL_PASSWORD_LOGIN": False, "OIDC_DISCOVERY_URL": ""}, "W624"),
    ],
)
def test_configuration_mistakes_are_reported_at_start(settings, changes, check):
    from rollout.checks import company_login_settings

    settings.OIDC_DISCOVERY_URL = "https://idp.example.com/.well-known/openid-configuration"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "client", "secret"
    settings.BREAK_GLASS_ACCOUNTS = ["oncall"]
    assert company_login_settings(None) == []
    for name, value in changes.items():
        setattr(settings, name, value)
    assert [problem.id for problem in company_login_settings(None)] == [f"rollout.{check}"]
