"""`rollout-control` as a person or a pipeline runs it: the real command in a child process
against the real token API on a live server (PostgreSQL, the service functions, the audit
trail). Each command's happy path and exit code, the refusals and errors as the server
answers them, `--json` that parses, and the token `login` stores readable by its owner only."""

import json
import os
import signal
import stat
import subprocess

import pytest

from rollout.models import (
    AuditEntry,
    ConfigChange,
    Decision,
    DesiredConfig,
    PercentRequest,
    Preferences,
)
from tests.api.conftest import token_of
from tests.conftest import make_environment
from tests.support.cli import ROOT, cli_env, console_script, run_cli
from tests.test_decisions import observing, sign

PRODUCTION = "pix-immo-api/production"


@pytest.fixture
def cli(live_server, tmp_path):
    """``cli(person_or_token, *args, input="", language="C.UTF-8")``: the command run with that
    person's new token (or the given token), against the live server, in a home of its own, with
    ``LANG=language``."""

    def run(who, *args, input="", language="C.UTF-8"):
        token = who if isinstance(who, str) else token_of(who)
        env = cli_env(tmp_path, live_server.url, token, language=language)
        return run_cli(*args, env=env, input=input)

    return run


def desired(environment):
    return DesiredConfig.objects.get(environment=environment)


# --- login ------------------------------------------------------------------------------------


def test_login_checks_the_token_and_stores_it_readable_by_its_owner_only(
    live_server, tmp_path, release_manager
):
    env = cli_env(tmp_path)
    stale = tmp_path / "config" / "rollout-control" / "config.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    stale.chmod(0o644)  # a file left readable by others is tightened, not reused as it was

    result = run_cli(
        "login", "--url", live_server.url, env=env, input=token_of(release_manager) + "\n"
    )

    assert result.code == 0, result.stderr
    assert f"Logged in to {live_server.url} as rita" in result.stdout
    assert stat.S_IMODE(stale.stat().st_mode) == 0o600
    assert stat.S_IMODE(stale.parent.stat().st_mode) & 0o077 == 0
    assert json.loads(stale.read_text())["url"] == live_server.url
    # Later commands use what was stored: no URL, no token in the environment.
    me = run_cli("whoami", "--json", env=env)
    assert me.code == 0, me.stderr
    assert me.json()["user"] == "rita"


def test_login_refuses_a_token_the_server_does_not_accept(live_server, tmp_path):
    result = run_cli(
        "login", "--url", live_server.url, env=cli_env(tmp_path), input="rc_0000_forged\n"
    )

    assert result.code == 2
    assert "Not authenticated (HTTP 401)" in result.stderr
    assert "run `rollout-control login` again" in result.stderr
    assert not (tmp_path / "config" / "rollout-control" / "config.json").exists()


def test_a_stored_token_is_never_sent_to_another_server(live_server, tmp_path, release_manager):
    env = cli_env(tmp_path)
    run_cli("login", "--url", live_server.url, env=env, input=token_of(release_manager) + "\n")

    result = run_cli("--url", "http://127.0.0.1:9", "status", env=env)

    assert result.code == 2
    assert "not logged in to http://127.0.0.1:9" in result.stderr


# --- status -----------------------------------------------------------------------------------


def test_status_shows_every_environment_and_one_in_detail(cli, production_configured, viewer):
    everything = cli(viewer, "status")
    assert everything.code == 0, everything.stderr
    assert PRODUCTION in everything.stdout and "10% B2a (v1)" in everything.stdout

    one = cli(viewer, "status", "production")  # the only service's production
    assert one.code == 0, one.stderr
    assert "Desired" in one.stdout and "10% B2a (v1)" in one.stdout

    parsed = cli(viewer, "status", PRODUCTION, "--json")
    assert parsed.code == 0, parsed.stderr
    document = parsed.json()
    assert (document["service"], document["name"]) == ("pix-immo-api", "production")
    assert document["desired"] == {"version": 1, "percent": 10, "tag": "B2a", "emergency": False}


def test_an_environment_name_alone_is_refused_when_services_are_several(
    cli, edge, production_configured, viewer
):
    make_environment(edge, name="preview", service_name="pix-search-api")

    result = cli(viewer, "status", "production")

    assert result.code == 2
    assert "several services (pix-immo-api, pix-search-api)" in result.stderr
    assert "pix-immo-api/production" in result.stderr


def test_status_watch_prints_each_new_state_until_interrupted(
    live_server, tmp_path, production_configured, release_manager
):
    env = {**os.environ, **cli_env(tmp_path, live_server.url, token_of(release_manager))}
    watch = subprocess.Popen(
        [*console_script(), "status", PRODUCTION, "--watch", "--json", "--interval", "0.5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(watch.stdout.readline())
        assert first["desired"]["percent"] == 10
        lowered = cli_env(tmp_path, live_server.url, token_of(release_manager))
        run_cli("percent", PRODUCTION, "5", "--reason", "calmer", "--yes", env=lowered)
        second = json.loads(watch.stdout.readline())
        assert second["desired"]["percent"] == 5
    finally:
        watch.send_signal(signal.SIGINT)
        code = watch.wait(timeout=30)
    assert code == 0, watch.stderr.read()


# --- the controls -----------------------------------------------------------------------------


def test_a_lower_applies_at_once(cli, production_configured, release_manager):
    result = cli(
        release_manager, "percent", PRODUCTION, "5", "--reason", "calmer", "--yes", "--json"
    )

    assert result.code == 0, result.stderr
    change = result.json()["change"]
    assert (change["kind"], change["version"]) == ("percent_change", 2)
    assert (
        desired(production_configured).canary_percent,
        desired(production_configured).version,
    ) == (5, 2)
    entry = AuditEntry.objects.get(action="config.percent_change")
    assert (entry.actor, entry.reason) == (release_manager, "calmer")


def test_a_raise_waits_for_a_second_person_who_approves_it(
    cli, production_configured, release_manager, tech_lead
):
    asked = cli(release_manager, "percent", PRODUCTION, "25", "--tag", "B2b", "--reason", "next",
                "--yes")  # fmt: skip
    assert asked.code == 0, asked.stderr
    request = PercentRequest.objects.get()
    assert f"rollout-control approve {request.public_id}" in asked.stdout
    assert desired(production_configured).canary_percent == 10

    approved = cli(tech_lead, "approve", str(request.public_id), "--yes")

    assert approved.code == 0, approved.stderr
    assert "version 2" in approved.stdout
    assert (
        desired(production_configured).canary_percent,
        desired(production_configured).canary_tag,
    ) == (25, "B2b")


def test_the_requester_approving_their_own_raise_is_refused(cli, production_configured, admin_user):
    token = token_of(admin_user)
    cli(token, "percent", PRODUCTION, "25", "--tag", "B2b", "--reason", "next", "--yes")
    request = PercentRequest.objects.get()

    result = cli(token, "approve", str(request.public_id), "--yes")

    assert result.code == 1
    assert "Conflict (HTTP 409)" in result.stderr and "second person" in result.stderr
    assert PercentRequest.objects.get().state == "pending"


def test_a_rejected_raise_changes_nothing(cli, production_configured, release_manager, tech_lead):
    cli(release_manager, "percent", PRODUCTION, "25", "--tag", "B2b", "--reason", "next", "--yes")
    request = PercentRequest.objects.get()

    result = cli(tech_lead, "reject", str(request.public_id), "--note", "not today", "--yes")

    assert result.code == 0, result.stderr
    assert "rejected" in result.stdout
    assert PercentRequest.objects.get().state == "rejected"
    assert desired(production_configured).version == 1


def test_the_stop_asks_first_and_does_nothing_without_a_yes(cli, production_configured, devops):
    token = token_of(devops)
    declined = cli(token, "stop", PRODUCTION, "--reason", "5xx", input="n\n")
    unanswered = cli(token, "stop", PRODUCTION, "--reason", "5xx")  # a script without --yes

    assert declined.code == 1 and "nothing was done" in declined.stderr
    assert "EMERGENCY STOP — 100% of traffic to proxy at once (now 10% B2a)" in declined.stderr
    assert unanswered.code == 2 and "pass --yes" in unanswered.stderr
    assert not desired(production_configured).emergency_proxy
    assert ConfigChange.objects.count() == 1

    confirmed = cli(token, "stop", PRODUCTION, "--reason", "5xx", input="y\n")

    assert confirmed.code == 0, confirmed.stderr
    assert desired(production_configured).emergency_proxy


def test_the_stop_with_wait_ends_when_the_edge_reports_it(
    cli, production_configured, devops, worker, edge
):
    result = cli(devops, "stop", PRODUCTION, "--reason", "5xx", "--yes", "--wait", "--json")

    assert result.code == 0, result.stderr
    assert result.json()["change"]["state"] == "in_effect"
    assert "change v2: in_effect" in result.stderr  # the progress, on stderr
    assert json.loads(edge.kv_value("production"))["emergency_proxy"] is True


def test_rollback_stop_and_lift_act_on_the_version_they_read(cli, production_configured, devops):
    token = token_of(devops)

    rolled_back = cli(token, "rollback", PRODUCTION, "--reason", "bad build", "--yes")
    assert rolled_back.code == 0, rolled_back.stderr
    assert "rollback, version 2" in rolled_back.stdout
    assert desired(production_configured).canary_percent == 0

    stopped = cli(token, "stop", PRODUCTION, "--reason", "5xx", "--yes")
    assert stopped.code == 0, stopped.stderr
    assert desired(production_configured).emergency_proxy

    lifted = cli(token, "lift", PRODUCTION, "--reason", "fixed", "--yes", "--json")
    assert lifted.code == 0, lifted.stderr
    assert (lifted.json()["change"]["kind"], lifted.json()["change"]["version"]) == (
        "lift_emergency",
        4,
    )
    assert not desired(production_configured).emergency_proxy


# --- errors as the server answers them --------------------------------------------------------


def test_a_bad_token_is_401_with_what_to_do(cli, production_configured):
    result = cli("rc_deadbeef_not-a-token", "status")

    assert result.code == 2
    assert "Not authenticated (HTTP 401)" in result.stderr
    assert "set ROLLOUT_CONTROL_TOKEN" in result.stderr


def test_a_viewer_is_refused_with_403_and_nothing_is_written(cli, production_configured, viewer):
    result = cli(viewer, "stop", PRODUCTION, "--reason", "5xx", "--yes")

    assert result.code == 1
    assert "Forbidden (HTTP 403)" in result.stderr
    assert "lacks the permission" in result.stderr
    assert not desired(production_configured).emergency_proxy
    assert ConfigChange.objects.count() == 1


def test_the_server_answers_in_the_language_of_the_environment(
    cli, production_configured, viewer
):
    result = cli(viewer, "stop", PRODUCTION, "--reason", "5xx", "--yes", language="de_DE.UTF-8")

    assert result.code == 1
    assert "Verboten (HTTP 403): Dir fehlt die Berechtigung rollout.emergency_stop." in (
        result.stderr
    )
    # The client's own hint after the server's words, in the same language.
    assert "dem Benutzer des Tokens fehlt dafür die Berechtigung" in result.stderr
    unknown = cli(viewer, "status", "pix-immo-api/staging", language="de_DE.UTF-8")
    assert "Nicht gefunden (HTTP 404): Es gibt keine Umgebung pix-immo-api/staging." in (
        unknown.stderr
    )


def test_a_person_s_own_language_wins_over_the_environment_s(cli, production_configured, viewer):
    Preferences.objects.create(user=viewer, language="de")

    result = cli(viewer, "stop", PRODUCTION, "--reason", "5xx", "--yes")

    assert "Verboten (HTTP 403): Dir fehlt die Berechtigung rollout.emergency_stop." in (
        result.stderr
    )


def test_a_stale_version_is_409_naming_the_current_one(cli, production_configured, release_manager):
    result = cli(release_manager, "percent", PRODUCTION, "5", "--reason", "calmer",
                 "--expected-version", "7", "--yes")  # fmt: skip

    assert result.code == 1
    assert "Conflict (HTTP 409)" in result.stderr
    assert "now at version 1" in result.stderr
    assert desired(production_configured).version == 1


def test_invalid_input_is_422_naming_the_field(cli, production_configured, release_manager):
    result = cli(release_manager, "percent", PRODUCTION, "5", "--tag", "B2b; rm", "--reason",
                 "calmer", "--yes")  # fmt: skip

    assert result.code == 2
    assert "Invalid input (HTTP 422)" in result.stderr and "tag" in result.stderr
    assert "Traceback" not in result.stderr
    assert desired(production_configured).version == 1


def test_an_unknown_environment_is_404(cli, production_configured, viewer):
    result = cli(viewer, "status", "pix-immo-api/staging")

    assert result.code == 2
    assert "(HTTP 404)" in result.stderr


# --- the audit trail --------------------------------------------------------------------------


def test_audit_lists_what_was_done_and_parses_as_json(cli, production_configured, devops, viewer):
    cli(devops, "stop", PRODUCTION, "--reason", "5xx spike", "--yes")

    table = cli(viewer, "audit", "--since", "1h")
    listed = cli(viewer, "audit", "--since", "1h", "--env", PRODUCTION, "--json")

    assert table.code == 0, table.stderr
    assert "dana" in table.stdout and "5xx spike" in table.stdout
    assert listed.code == 0, listed.stderr
    stop = next(e for e in listed.json() if e["action"] == "config.emergency_stop")
    assert (stop["actor"], stop["reason"]) == ("dana", "5xx spike")


def test_audit_refuses_a_moment_it_cannot_read(cli, viewer):
    result = cli(viewer, "audit", "--since", "last tuesday")

    assert result.code == 2
    assert "neither a date/time" in result.stderr


# --- decisions --------------------------------------------------------------------------------


def test_decision_show_names_the_verdict_and_its_signers(cli, production_at_b2a, tech_lead, devops,
                                                         viewer):  # fmt: skip
    run = observing(production_at_b2a, hours_ago=3, fill_logs=False)
    sign(run, tech_lead, "tech_lead", outcome="no_go", justification="upload errors seen")
    sign(run, devops, "devops", outcome="no_go", justification="agreed")
    decision = Decision.objects.get()

    shown = cli(viewer, "decision", "show", str(decision.public_id))
    parsed = cli(viewer, "decision", "show", str(decision.public_id), "--json")

    assert shown.code == 0, shown.stderr
    assert "NO-GO" in shown.stdout and "theo" in shown.stdout and "dana" in shown.stdout
    assert parsed.code == 0, parsed.stderr
    assert parsed.json()["phase_id"] == str(run.public_id)


# --- deployed ---------------------------------------------------------------------------------


def test_deployed_reports_the_version_wrangler_printed(cli, edge, release_manager, viewer):
    preview = make_environment(edge, name="preview")
    version = "5e6f7a8b-cccc-4ccc-8ccc-000000000003"

    result = cli(release_manager, "deployed", "pix-immo-api/preview", version, "--message", "p812")

    assert result.code == 0, result.stderr
    assert f"pix-immo-api/preview: version {version} reported deployed" in result.stdout
    entry = AuditEntry.objects.get(action="worker.reported", environment=preview)
    assert entry.reason == "p812" and entry.via.startswith("token")

    refused = cli(viewer, "deployed", "pix-immo-api/preview", version, "--json")
    assert refused.code == 1 and "permission" in refused.stderr
    bad = cli(release_manager, "deployed", "pix-immo-api/preview", "not a version")
    assert bad.code == 2 and "version id" in bad.stderr
