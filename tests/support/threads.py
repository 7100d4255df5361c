"""Several callers at once, as several workers or web processes would be."""

import threading

from django.db import connection


def at_once(function, times: int, *, timeout: float = 60) -> list:
    """Call ``function`` on ``times`` threads started together, each on its own database
    connection (closed when it is done); their results, in the order they finished. The first
    exception a call raised is raised here."""
    results, failures = [], []

    def call():
        try:
            results.append(function())
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if failures:
        raise failures[0]
    return results
