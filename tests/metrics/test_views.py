"""The panels (page, HTMX fragment, "nothing changed" polls), JSON, Prometheus, and editing
the alert rules (method, login, role, bad input, audit)."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics import alerts
from metrics.models import AlertPolicy, AlertRule, LogSource
from rollout.models import AuditEntry, DesiredConfig
from tests.conftest import client_for, make_environment
from tests.metrics.test_alert_rules import at, minute_of_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(edge, settings):
    settings.METRICS_ALERT_SETTLE_MINUTES = 0
    environment = make_environment(edge)
    DesiredConfig.objects.create(environment=environment, canary_percent=10, canary_tag="B2a")
    LogSource.objects.create(environment=environment, kind="directory", directory="/nonexistent")
    return environment


@pytest.fixture
def with_traffic(env):
    """Five minutes of traffic that just happened, 10% native 5xx."""
    base = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=6)
    for n in range(5):
        minute_of_traffic(env, n, native=100, native_5xx=10, native_ms=300, proxy=900, base=base)
    LogSource.objects.filter(environment=env).update(newest_log_at=at(5, base))
    alerts.evaluate_environment(env.pk)
    env.base = base
    return env


def url(name, env, **query):
    address = reverse(f"metrics:{name}", args=[env.public_id])
    return address + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- reading -------------------------------------------------------------------------------------


def test_the_page_shows_panels_thresholds_and_alerts(with_traffic, viewer, settings):
    response = client_for(viewer).get(url("environment", with_traffic, window="24h"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and page.count("<svg viewBox") == 4
    for title in ("Cohort share", "5xx rate per cohort", "Time to first byte", "Request volume"):
        assert title in page
    assert "native-5xx-critical 3%" in page and "native-p90 600 ms" in page  # thresholds drawn
    assert "FIRING" in page  # 10% native 5xx for five minutes
    assert 'class="series"' in page


def test_the_fragment_alone_and_its_poll(with_traffic, viewer):
    client = client_for(viewer)
    fragment = client.get(url("panels", with_traffic), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "<html" not in text and 'hx-trigger="every 30s"' in text
    token = text.split("u=", 1)[1].split('"', 1)[0]
    unchanged = client.get(url("panels", with_traffic, window="1h", u=token))
    assert unchanged.status_code == 204
    minute_of_traffic(with_traffic, 5, native=100, base=with_traffic.base)
    LogSource.objects.filter(environment=with_traffic).update(last_object_at=timezone.now())
    assert client.get(url("panels", with_traffic, window="1h", u=token)).status_code == 200


@pytest.mark.parametrize("window", ["1h", "6h", "24h", "phase", "nonsense"])
def test_every_window(with_traffic, viewer, window):
    assert client_for(viewer).get(url("panels", with_traffic, window=window)).status_code == 200


def test_figures_as_json(with_traffic, viewer):
    data = client_for(viewer).get(url("figures_json", with_traffic, window="24h")).json()
    native = data["total"]["cohorts"]["native"]
    assert native["requests"] == 500 and native["errors_5xx"] == 50
    assert native["error_percent"] == 10.0
    assert abs(native["ttfb_ms"]["p90"] - 300) <= 3
    assert data["total"]["native_share_percent"] == 10.0
    assert {a["rule"]: a["state"] for a in data["alerts"]}["native-5xx-critical"] == "firing"
    assert len(data["series"]) == 60


def test_prometheus_with_a_token(with_traffic, client, settings):
    settings.METRICS_PROMETHEUS_TOKEN = "scrape-secret"
    assert client.get(reverse("metrics:prometheus")).status_code == 401
    bad = client.get(reverse("metrics:prometheus"), headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    response = client.get(
        reverse("metrics:prometheus"), headers={"Authorization": "Bearer scrape-secret"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    labels = 'service="pix-immo-api",environment="production"'
    assert "# TYPE rollout_requests gauge" in text
    assert f'rollout_requests{{{labels},cohort="native"}} 500' in text
    assert f'rollout_error_ratio{{{labels},cohort="native"}} 0.1' in text
    critical = f'{labels},rule="native-5xx-critical",severity="critical"'
    assert f'rollout_alert_state{{{critical},state="firing"}} 1' in text
    assert f'rollout_alert_state{{{critical},state="inactive"}} 0' in text
    assert 'quantile="0.9"' in text


def test_prometheus_for_a_logged_in_viewer_only(with_traffic, viewer, outsider):
    assert client_for(viewer).get(reverse("metrics:prometheus")).status_code == 200
    assert client_for(outsider).get(reverse("metrics:prometheus")).status_code == 403


def test_reading_needs_a_role(env, outsider, client):
    for name in ("environment", "panels", "figures_json"):
        assert client_for(outsider).get(url(name, env)).status_code == 403
        response = client.get(url(name, env))
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_unknown_environment_is_404(viewer):
    address = reverse("metrics:panels", args=[uuid.uuid4()])
    assert client_for(viewer).get(address).status_code == 404


def test_an_environment_without_logs_says_so(edge, viewer):
    environment = make_environment(edge, name="preview")
    page = client_for(viewer).get(url("panels", environment)).content.decode()
    assert "No log source is set up" in page


# --- editing the alert rules -------------------------------------------------------------------


def save_url(env):
    return reverse("metrics:save_alert_rules", args=[env.service.name])


def form_data(**changes):
    data = {
        "min_requests_per_minute": 20,
        "overwhelming_multiple": 3,
        "overwhelming_min_requests": 200,
        "reason": "tune for B2b traffic",
    }
    for rule in alerts.DEFAULT_RULES:
        name, _kind, threshold, for_minutes, severity = rule
        data.update(
            {
                f"{name}-threshold": threshold,
                f"{name}-for_minutes": for_minutes,
                f"{name}-severity": severity,
                f"{name}-enabled": "on",
            }
        )
    data.update(changes)
    return data


def test_the_rules_page_shows_the_form_to_admins_only(env, viewer, admin_user):
    address = reverse("metrics:alert_rules", args=[env.service.name])
    assert b"Save alert settings" not in client_for(viewer).get(address).content
    assert b"Save alert settings" in client_for(admin_user).get(address).content


def test_an_admin_changes_the_rules_and_it_is_audited(env, admin_user):
    alerts.policy_for(env.service)
    data = form_data(
        **{
            "native-5xx-critical-threshold": "2.5",
            "native-5xx-critical-for_minutes": "2",
            "auto_emergency_stop": "on",
        }
    )
    response = client_for(admin_user).post(save_url(env), data)
    assert response.status_code == 302
    rule = AlertRule.objects.get(name="native-5xx-critical")
    assert (rule.threshold, rule.for_minutes) == (2.5, 2)
    policy = AlertPolicy.objects.get()
    assert policy.auto_emergency_stop is True and policy.updated_by == admin_user
    entry = AuditEntry.objects.get(action="alerts.settings_changed")
    assert entry.actor == admin_user and entry.reason == "tune for B2b traffic"
    assert entry.before["rules"]["native-5xx-critical"]["threshold"] == 3.0
    assert entry.after["rules"]["native-5xx-critical"]["threshold"] == 2.5
    assert "auto_emergency_stop" in entry.detail and "native-5xx-critical" in entry.detail


def test_an_admin_opts_in_to_overwhelming_evidence_and_it_is_audited(env, admin_user):
    alerts.policy_for(env.service)
    assert AlertPolicy.objects.get().overwhelming_evidence is False
    data = form_data(
        overwhelming_evidence="on", overwhelming_multiple="4", overwhelming_min_requests="500"
    )
    assert client_for(admin_user).post(save_url(env), data).status_code == 302
    policy = AlertPolicy.objects.get()
    assert policy.overwhelming_evidence is True
    assert (policy.overwhelming_multiple, policy.overwhelming_min_requests) == (4.0, 500)
    entry = AuditEntry.objects.get(action="alerts.settings_changed")
    assert entry.before["overwhelming_evidence"] is False
    assert entry.after["overwhelming_evidence"] is True
    assert entry.after["overwhelming_multiple"] == 4.0
    for name in ("overwhelming_evidence", "overwhelming_min_requests", "overwhelming_multiple"):
        assert name in entry.detail
    page = client_for(admin_user).get(reverse("metrics:alert_rules", args=[env.service.name]))
    assert b"Overwhelming evidence" in page.content


@pytest.mark.parametrize("person", ["viewer", "release_manager", "tech_lead", "devops", "outsider"])
def test_only_admins_change_the_rules(env, request, person):
    user = request.getfixturevalue(person)
    assert client_for(user).post(save_url(env), form_data()).status_code == 403
    assert not AuditEntry.objects.filter(action="alerts.settings_changed").exists()


def test_changing_the_rules_takes_post_and_a_login(env, admin_user, client):
    assert client_for(admin_user).get(save_url(env)).status_code == 405
    response = client.post(save_url(env), form_data())
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"native-5xx-critical-threshold": "-1"}, b"greater than or equal to 0"),
        ({"native-5xx-critical-threshold": "150"}, b"cannot be above 100"),
        ({"native-p90-for_minutes": "abc"}, b"Enter a whole number"),
        ({"reason": "   "}, b"This field is required"),
        ({"min_requests_per_minute": "0"}, b"greater than or equal to 1"),
        ({"overwhelming_multiple": "0.5"}, b"greater than or equal to 1"),
        ({"overwhelming_multiple": "many"}, b"Enter a number"),
        ({"overwhelming_min_requests": "0"}, b"greater than or equal to 1"),
    ],
)
def test_bad_input_is_refused_with_the_reason(env, admin_user, changes, message):
    alerts.policy_for(env.service)
    response = client_for(admin_user).post(
        save_url(env), form_data(**changes), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert message in response.content
    assert AlertRule.objects.get(name="native-5xx-critical").threshold == 3.0
    assert not AuditEntry.objects.filter(action="alerts.settings_changed").exists()


def test_an_htmx_save_navigates_to_the_rules_page_instead_of_nesting_it(env, admin_user):
    alerts.policy_for(env.service)
    response = client_for(admin_user).post(
        save_url(env), form_data(), headers={"HX-Request": "true"}
    )
    # htmx follows a 302 itself and swaps the page it lands on into the form.
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("metrics:alert_rules", args=[env.service.name])
    assert response.content == b""
