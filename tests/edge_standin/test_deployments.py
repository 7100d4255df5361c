"""The stand-in's Workers deployments API and its deploy control, over real HTTP: the v4
envelope with the fields Cloudflare's answer has, a missing script, auth, and a split."""

import httpx
import pytest

from edge_standin.deployments import INITIAL_VERSION
from tests.support.edge import EdgeStandIn

NAMESPACES = {"preview": "ns-preview-deploy", "production": "ns-production-deploy"}
SCRIPTS = ("pix-immo-api",)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    state = tmp_path_factory.mktemp("standin") / "edge-state.json"
    with EdgeStandIn(namespaces=NAMESPACES, state_file=state, worker_scripts=SCRIPTS) as server:
        yield server


def listed(standin, script="pix-immo-api", token=None):
    url = f"{standin.api_base_url}/accounts/{standin.account}/workers/scripts/{script}/deployments"
    headers = {"Authorization": f"Bearer {token or standin.token}"}
    return httpx.get(url, headers=headers, timeout=5)


def test_a_script_given_at_start_has_its_first_deployment(standin):
    standin.reset(values=True)
    response = listed(standin)
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["errors"], body["messages"]) == (True, [], [])
    (first,) = body["result"]["deployments"]
    assert set(first) == {
        "id",
        "created_on",
        "source",
        "strategy",
        "author_email",
        "annotations",
        "versions",
    }
    assert first["versions"] == [{"version_id": INITIAL_VERSION, "percentage": 100}]
    assert set(first["annotations"]) == {"workers/message", "workers/triggered_by"}


def test_a_deploy_is_listed_first_and_a_split_keeps_the_live_version(standin):
    standin.reset(values=True)
    standin.deploy("pix-immo-api", version_id="v-2", message="hotfix")
    standin.deploy("pix-immo-api", version_id="v-3", percentage=25)
    deployments = listed(standin).json()["result"]["deployments"]
    assert [d["versions"] for d in deployments[:2]] == [
        [{"version_id": "v-2", "percentage": 75}, {"version_id": "v-3", "percentage": 25}],
        [{"version_id": "v-2", "percentage": 100}],
    ]
    assert deployments[1]["annotations"]["workers/message"] == "hotfix"


def test_a_missing_script_and_a_wrong_token_answer_as_cloudflare_does(standin):
    missing = listed(standin, script="no-such-worker")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == 10007
    refused = listed(standin, token="wrong")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == 10000


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"percentage": 0}, "percentage is above 0"),
        ({"percentage": "ten"}, "percentage must be a number"),
        ({"colour": "blue"}, "unknown deployment fields"),
        ({"versions": []}, "versions is a list of one or two"),
    ],
)
def test_a_bad_deploy_is_refused_with_a_message(standin, body, said):
    response = standin.client.post("/_standin/workers/pix-immo-api", json=body)
    assert response.status_code == 400
    assert said in response.json()["error"]


def test_a_split_needs_a_live_version(standin):
    response = standin.client.post("/_standin/workers/new-worker", json={"percentage": 10})
    assert response.status_code == 400 and "no live version" in response.json()["error"]


def test_the_deployments_survive_a_restart_with_a_state_file(tmp_path):
    state = tmp_path / "edge-state.json"
    with EdgeStandIn(namespaces=NAMESPACES, state_file=state, worker_scripts=SCRIPTS) as first:
        deployed = first.deploy("pix-immo-api", version_id="v-9")
    with EdgeStandIn(namespaces=NAMESPACES, state_file=state, worker_scripts=SCRIPTS) as again:
        (live, *_) = listed(again).json()["result"]["deployments"]
    assert live["id"] == deployed["id"]
