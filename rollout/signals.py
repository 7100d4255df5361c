"""What rollout announces to the apps built on it.

Rollout sits below monitoring and metrics (see docs/architecture.md): it never imports them.
Where rollout needs something only an app above it can do, it sends a signal here and that app
connects its receiver in its ``AppConfig.ready()``.
"""

from django.dispatch import Signal

# A fresh look at an environment's KV and edge is wanted soon, not only at the next beat: the KV
# writer sends it (after commit) when an older write of ours got no answer and may still land over
# the newest one. Arguments: ``environment_id``, ``delay`` (seconds to wait before looking).
# monitoring connects it to queue a forced observation, which re-applies the desired config.
observation_wanted = Signal()
