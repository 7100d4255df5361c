"""Log-in lockout over real HTTP (django-axes, rollout/lockout.py): failed log-ins lock one
username at one client address, the client address comes from X-Forwarded-For only through a
trusted proxy, and attempts and lockouts are audited and shown to admins.

The live server sees every request from 127.0.0.1; as the TLS proxy, that address is trusted and
each request carries the X-Forwarded-For header the proxy would add."""

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.utils import timezone

from rollout.models import AuditEntry
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db(transaction=True)

OFFICE = "198.51.100.7"  # address A: where the guessing happens
HOME = "203.0.113.9"  # address B


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]


def log_in(base_url, username, password, *, forwarded_for=None, path="/login/"):
    """One log-in as a browser does it (the page, then the form), from ``forwarded_for``."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        client.get(path).raise_for_status()
        return client.post(
            path,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )


def fail_five_times(base_url, username, address, path="/login/"):
    for _ in range(5):
        log_in(base_url, username, "wrong-password", forwarded_for=address, path=path)


def test_a_flood_of_made_up_names_does_not_lock_out_a_real_user(live_server, behind_proxy, devops):
    for number in range(12):
        response = log_in(live_server.url, f"nobody{number}", "guess", forwarded_for=OFFICE)
        assert "Please enter a correct username and password" in response.text
    fail_five_times(live_server.url, "nobody", OFFICE)

    response = log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE)
    assert response.status_code == 302 and response.headers["location"] == "/"


def test_wrong_passwords_lock_that_name_at_that_address_and_nowhere_else(
    live_server, behind_proxy, devops
):
    fail_five_times(live_server.url, "dana", OFFICE)

    locked = log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE)
    assert locked.status_code == 429
    assert "<h1>Log in</h1>" in locked.text  # the log-in page, not a bare refusal
    assert "locked from your address for 15 more minutes" in locked.text
    with time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=30), tick=True):
        later = log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE)
    assert later.status_code == 429
    assert "locked from your address for 5 more minutes" in later.text

    elsewhere = log_in(live_server.url, "dana", PASSWORD, forwarded_for=HOME)
    assert elsewhere.status_code == 302 and elsewhere.headers["location"] == "/"


def test_the_admin_log_in_follows_the_same_rule(live_server, behind_proxy, admin_user):
    fail_five_times(live_server.url, "adam", OFFICE, path="/admin/login/")

    locked = log_in(live_server.url, "adam", PASSWORD, forwarded_for=OFFICE, path="/admin/login/")
    assert locked.status_code == 429 and "locked from your address" in locked.text
    elsewhere = log_in(live_server.url, "adam", PASSWORD, forwarded_for=HOME, path="/admin/login/")
    assert elsewhere.status_code == 302


def test_the_lock_ends_after_the_cool_off(live_server, behind_proxy, devops):
    fail_five_times(live_server.url, "dana", OFFICE)
    assert log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE).status_code == 429

    with time_machine.travel(timezone.now() + timedelta(minutes=15, seconds=5), tick=True):
        response = log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE)
    assert response.status_code == 302 and response.headers["location"] == "/"


def test_an_untrusted_peer_cannot_choose_its_address(live_server, devops):
    """Without TRUSTED_PROXIES the header is the sender's own claim: changing it on every try
    must not dodge the count, and the audit records the connection's address."""
    for number in range(5):
        log_in(live_server.url, "dana", "wrong", forwarded_for=f"192.0.2.{number}")

    response = log_in(live_server.url, "dana", PASSWORD, forwarded_for=HOME)
    assert response.status_code == 429
    addresses = set(
        AuditEntry.objects.filter(action="auth.login_failed").values_list("client_ip", flat=True)
    )
    assert addresses == {"127.0.0.1"}


def test_a_forged_header_behind_the_proxy_counts_the_real_client(live_server, behind_proxy, devops):
    """The proxy appends the address it talked to; what the client wrote to its left is ignored."""
    for number in range(5):
        log_in(live_server.url, "dana", "wrong", forwarded_for=f"192.0.2.{number}, {OFFICE}")

    assert log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE).status_code == 429
    assert log_in(live_server.url, "dana", PASSWORD, forwarded_for="192.0.2.0").status_code == 302


def test_failed_log_ins_and_the_lockout_are_audited(live_server, behind_proxy, devops):
    fail_five_times(live_server.url, "dana", OFFICE)
    log_in(live_server.url, "dana", PASSWORD, forwarded_for=OFFICE)

    failed = AuditEntry.objects.filter(action="auth.login_failed").order_by("id")
    wrong, refused = "wrong username or password", "refused: locked out"
    assert [entry.detail for entry in failed] == [f"username 'dana': {wrong}"] * 5 + [
        f"username 'dana': {refused}"
    ]
    (locked,) = AuditEntry.objects.filter(action="auth.locked_out")
    assert locked.detail.startswith(f"username 'dana' locked out from {OFFICE} after 5 failed")
    assert {entry.client_ip for entry in [*failed, locked]} == {OFFICE}
    assert all(entry.outcome == "refused" and entry.request_id for entry in [*failed, locked])


def test_attempts_and_lockouts_show_in_the_admin_for_admins_only(
    live_server, behind_proxy, devops, admin_user, viewer
):
    fail_five_times(live_server.url, "dana", OFFICE)

    admin = client_for(admin_user)
    assert "Access attempts" in admin.get("/admin/").content.decode()
    attempts = admin.get("/admin/axes/accessattempt/?locked_out=yes").content.decode()
    assert "dana" in attempts and OFFICE in attempts and "Locked Out" in attempts

    assert client_for(viewer).get("/admin/axes/accessattempt/").status_code == 302
    devops.is_staff = True
    devops.save()
    assert client_for(devops).get("/admin/axes/accessattempt/").status_code == 403


def test_the_client_address_believes_only_trusted_proxies(settings):
    from django.test import RequestFactory

    from rollout.client_address import client_address

    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]

    def address(peer, forwarded=None):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_address(RequestFactory().get("/", REMOTE_ADDR=peer, **extra))

    assert address("203.0.113.9", "192.0.2.1") == "203.0.113.9"  # not a proxy: header ignored
    assert address("127.0.0.1") == "127.0.0.1"  # no header
    assert address("127.0.0.1", "192.0.2.1, 203.0.113.9") == "203.0.113.9"
    assert address("127.0.0.1", "192.0.2.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert address("127.0.0.1", "10.9.9.9, 10.1.2.3") == "10.9.9.9"  # every hop a proxy
    assert address("127.0.0.1", "203.0.113.9, not-an-address") == "127.0.0.1"
    assert address("127.0.0.1", "2001:db8::1") == "2001:db8::1"
