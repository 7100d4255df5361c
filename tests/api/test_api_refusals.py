"""A viewer's token is refused every write of the API: 403, nothing written, one audit entry
naming the token. The walk reads the routes from the OpenAPI document, so a new write route
without a body below fails here."""

import pytest

from api.models import ApiToken
from rollout.models import AuditEntry
from tests.api.conftest import assert_problem, token_of
from tests.test_refusals import row_counts, world  # noqa: F401  (world is a fixture)

VALID_BODIES = {
    "/environments/{service}/{environment}/percent": {
        "percent": 25,
        "tag": "B2b",
        "reason": "next",
        "expected_version": 3,
    },
    "/environments/{service}/{environment}/rollback": {"reason": "back", "expected_version": 3},
    "/environments/{service}/{environment}/emergency-stop": {"reason": "stop"},
    "/environments/{service}/{environment}/emergency-lift": {
        "reason": "lift",
        "expected_version": 3,
    },
    "/environments/{service}/{environment}/preview-runs": {"build": "b2"},
    "/environments/{service}/{environment}/deployments": {"version_id": "b2"},
    "/environments/{service}/{environment}/phases/start": {"reason": "go"},
    "/requests/{public_id}/approve": {"note": ""},
    "/requests/{public_id}/reject": {"note": "no"},
    "/phases/{public_id}/sign": {"verdict": "NO-GO", "reason": "", "evidence_digest": "0" * 64},
}


def _path(path: str, world) -> str:  # noqa: F811
    environment = "preview" if path.endswith("preview-runs") else "production"
    objects = {"requests": "percent_request", "phases": "phase_run"}
    segment = path.split("/")[1]
    return path.format(
        service=world["service"].name,
        environment=environment,
        public_id=world[objects[segment]].public_id if segment in objects else "",
    )


@pytest.mark.parametrize("person", ["viewer", "outsider"])
def test_every_write_refuses_a_token_without_the_right(api, world, request, person):  # noqa: F811
    user = request.getfixturevalue(person)
    client = api(token_of(user, name="read-only"))
    token = ApiToken.objects.get(user=user)
    document = client.get("/schema").json()
    writes = [
        path.removeprefix("/api/v1") for path, ops in document["paths"].items() if "post" in ops
    ]
    assert sorted(writes) == sorted(VALID_BODIES), "a write route needs a body in VALID_BODIES"
    problems = []
    for path in writes:
        counts = row_counts()
        last = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = client.post(_path(path, world), json=VALID_BODIES[path])
        new = list(AuditEntry.objects.filter(id__gt=last))
        if response.status_code != 403:
            problems.append(f"{path}: {response.status_code} {response.text[:200]}")
            continue
        assert_problem(response, 403)
        if [(e.action, e.actor_id, e.outcome, e.via) for e in new] != [
            ("permission.denied", user.pk, "refused", token.label)
        ]:
            problems.append(f"{path}: audit entries {[(e.action, e.via) for e in new]}")
        if row_counts() != counts:
            problems.append(f"{path}: the database changed")
    assert not problems, "\n".join(problems)
