# Read by gunicorn from the working directory. Its own log lines follow LOG_FORMAT, like the
# application's (config/log_format.py).
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger_class = "config.log_format.GunicornLogger"

# Threads, so that an idle keep-alive connection waits in the worker's poller instead of holding
# a worker; the sync worker closes every connection after one answer. The command lines (the
# Dockerfile, docker-compose.yml, scripts/demo) give the number of threads.
worker_class = "gthread"

# How long an idle connection stays open, in seconds. Whoever closes an idle connection while
# the other side reuses it loses a request: gunicorn closes a connection with the request unread,
# the client gets a reset (httpx's ReadError), and nothing is logged. With gunicorn's default of
# 2 s, a page polling every 2 s or a reverse proxy's pool of upstream connections meets that
# moment again and again; under the load test 2 in 300 requests were lost that way. So gunicorn
# must be the last to close: longer than any proxy's idle timeout for its upstream connections
# (nginx 60 s, AWS ALB 60 s, cloudflared 90 s by default; see docs/operations.md). An idle
# connection costs the gthread worker a file descriptor, not a thread.
keepalive = 120
