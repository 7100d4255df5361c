"""Settings for the test suite: the real settings module, with test-friendly environment
defaults (short timeouts and backoff so fault tests run in seconds, PostgreSQL by default)."""

import os
import socket


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The suite runs its own redis-server on this port (tests/conftest.py), so that a test can stop
# and restart the broker without touching the machine's Redis.
TEST_REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT") or _free_port())
os.environ["TEST_REDIS_PORT"] = str(TEST_REDIS_PORT)

TEST_ENV = {
    "DATABASE_URL": os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollout_control"
    ),
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdef",
    "HTTP_TIMEOUT_SECONDS": "1.0",
    "KV_WRITE_LEASE_SECONDS": "4",
    "KV_RETRY_BASE_SECONDS": "0.05",
    "KV_RETRY_MAX_SECONDS": "0.5",
    "KV_WRITE_MAX_ATTEMPTS": "4",
    "EDGE_POLL_INTERVAL_SECONDS": "0.1",
    "PROPAGATION_ALLOWANCE_SECONDS": "3",
    "SWEEP_INTERVAL_SECONDS": "1",
    "OBSERVE_INTERVAL_SECONDS": "3600",
    # The edge request budget is off by default, so that tests of the edge's own rate limit see
    # it; tests/monitoring/test_edge_budget.py turns it on where it is the subject.
    "EDGE_REQUEST_BUDGET": "0",
    "ROLLOUT_VAR_DIR": os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"),
    "CELERY_BROKER_URL": f"redis://127.0.0.1:{TEST_REDIS_PORT}/0",
    "SLACK_DEPLOYMENTS_WEBHOOK_URL": "",
    # The audit chain's key, in os.environ so that workers and `manage.py` children share it.
    "AUDIT_HMAC_KEY": "test-audit-hmac-key-not-for-production-0123456789",
    "AUDIT_HMAC_KEY_ID": "test1",
}
for _key, _value in TEST_ENV.items():
    os.environ[_key] = _value

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests change state and read the live fragments at once; tests/test_live_fragment_cache.py
# turns the one-second cache on where it is the subject.
LIVE_FRAGMENT_CACHE_SECONDS = 0

# Serve static files straight from the source folders (no collectstatic before the tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# One test database per run, so that two runs on one machine (a developer's and a CI clone,
# say) never drop each other's database.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_rollout_control_{os.getpid()}"}  # noqa: F405
