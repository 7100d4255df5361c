"""The preview suite, the evidence and the sign-off over the API: the same services as the pages,
so a signature names the digest of the evidence its signer read."""

from django.urls import reverse

from rollout.models import AuditEntry, Decision, PreviewRun
from tests.api.conftest import assert_problem, service_token, token_of
from tests.conftest import client_for, configured_environment
from tests.support.rollouts import make_production_at_b2a
from tests.test_decisions import observing


def test_a_preview_run_starts_once_and_reports(api, edge, release_manager):
    configured_environment(edge, name="preview")
    rita = api(token_of(release_manager))
    started = rita.post("/environments/pix-immo-api/preview/preview-runs", json={"build": "b-42"})
    assert started.status_code == 201, started.text
    run = started.json()
    assert (run["build"], run["state"], run["verdict"]) == ("b-42", "queued", None)
    assert run["progress"]["done"] == 0 and run["progress"]["total"] == len(run["checks"]) > 0

    again = rita.post("/environments/pix-immo-api/preview/preview-runs", json={"build": "b-42"})
    assert "already in progress" in assert_problem(again, 409)["detail"]
    assert PreviewRun.objects.count() == 1
    refused = AuditEntry.objects.get(action="preview_suite.refused")
    assert refused.via.startswith("token pipeline")

    assert rita.get(f"/preview-runs/{run['id']}").json()["id"] == run["id"]
    report = rita.get(f"/preview-runs/{run['id']}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/markdown")
    assert "b-42" in report.text
    on_production = rita.post(
        "/environments/pix-immo-api/production/preview-runs", json={"build": "b-42"}
    )
    assert_problem(on_production, 404)


def test_a_signature_names_the_evidence_it_read(api, edge, tech_lead):
    production = make_production_at_b2a(edge)
    run = observing(production)
    theo = api(token_of(tech_lead))
    evidence = theo.get(f"/phases/{run.public_id}/evidence")
    assert evidence.status_code == 200, evidence.text
    digest = evidence.json()["digest"]
    assert evidence.json()["document"]["phase"]["tag"] == "B2a"

    stale = theo.post(
        f"/phases/{run.public_id}/sign",
        json={"verdict": "NO-GO", "reason": "errors", "evidence_digest": "f" * 64},
    )
    assert "evidence changed" in assert_problem(stale, 409)["detail"]
    assert not Decision.objects.exists()
    assert AuditEntry.objects.get(action="decision.refused").via.startswith("token pipeline")

    signed = theo.post(
        f"/phases/{run.public_id}/sign",
        json={"verdict": "NO-GO", "reason": "errors", "evidence_digest": digest},
    )
    assert signed.status_code == 201, signed.text
    decision = signed.json()
    assert (decision["verdict"], decision["state"]) == ("NO-GO", "open")
    assert [s["signer"] for s in decision["signatures"]] == ["theo"]
    assert theo.get(f"/decisions/{decision['id']}").json() == decision


def test_the_figures_are_the_metrics_panels_document(api, edge, viewer):
    production = make_production_at_b2a(edge)
    from_api = api(token_of(viewer)).get("/environments/pix-immo-api/production/figures?window=6h")
    assert from_api.status_code == 200, from_api.text
    page = client_for(viewer).get(
        reverse("metrics:figures_json", args=[production.public_id]), {"window": "6h"}
    )
    assert set(from_api.json()) == set(page.json())
    assert from_api.json()["environment"] == page.json()["environment"]
    assert_problem(
        api(token_of(viewer)).get("/environments/pix-immo-api/production/figures?window=9y"), 422
    )


def test_a_service_account_never_signs(api, edge, admin_user):
    run = observing(make_production_at_b2a(edge))
    bot = api(service_token(admin_user, account="signer-bot", role="tech lead"))
    digest = bot.get(f"/phases/{run.public_id}/evidence").json()["digest"]
    refused = bot.post(
        f"/phases/{run.public_id}/sign",
        json={"verdict": "NO-GO", "reason": "errors", "evidence_digest": digest},
    )
    assert "two people" in assert_problem(refused, 403)["detail"]
    assert not Decision.objects.exists()
    assert AuditEntry.objects.get(action="permission.denied").actor.username == "signer-bot"


def test_a_run_the_suite_could_not_finish_is_an_error_not_a_no_go(api, edge, release_manager):
    configured_environment(edge, name="preview")
    rita = api(token_of(release_manager))
    started = rita.post("/environments/pix-immo-api/preview/preview-runs", json={"build": "b-43"})
    PreviewRun.objects.filter(public_id=started.json()["id"]).update(state=PreviewRun.State.RUNNING)
    run = PreviewRun.objects.get(public_id=started.json()["id"])
    assert run.finish(error="preview has no desired config")

    answer = rita.get(f"/preview-runs/{run.public_id}").json()
    assert (answer["state"], answer["verdict"]) == ("error", None)
    assert answer["error"] == "preview has no desired config"
    assert answer["environment"] == "pix-immo-api/preview"
    (entry,) = rita.get("/audit", params={"environment": answer["environment"]}).json()["entries"][
        :1
    ]
    assert entry["environment"] == "pix-immo-api/preview"
