"""Edge stand-in: a local server that speaks the Cloudflare KV API subset and behaves like the
canary edge worker of each environment, with knobs for tests and the demo.

It must not import Django or any project app.
"""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
