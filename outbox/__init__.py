"""The notification outbox: messages to Slack and PagerDuty, recorded as rows and delivered by
Celery. Every app may queue a message here; this app imports none of them."""
