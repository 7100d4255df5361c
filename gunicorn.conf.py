# Read by gunicorn from the working directory. Its own log lines follow LOG_FORMAT, like the
# application's (config/log_format.py).
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger_class = "config.log_format.GunicornLogger"

# Threads, so that an idle keep-alive connection waits in the worker's poller instead of holding
# a worker; the sync worker closes every connection after one answer. The command lines (the
# Dockerfile, docker-compose.yml, scripts/demo) give the number of threads.
worker_class = "gthread"

# How long an idle connection stays open, in seconds. When gunicorn closes an idle connection
# just as the client reuses it, the request on it is lost unread: the client gets a reset
# (httpx's ReadError) and gunicorn logs nothing. With gunicorn's default of 2 s, clients that
# write every 2 s met that moment about once in 80 writes in the load test. So gunicorn closes
# last: later than any proxy closes its idle upstream connections (nginx 60 s, AWS ALB 60 s,
# cloudflared 90 s by default; docs/operations.md) and later than a polling page's 2 s. An idle
# connection costs the gthread worker a file descriptor, not a thread.
keepalive = 120
