"""Acting from Slack: the buttons' interactivity endpoint, the Slack user behind a press, and the
task that carries a press out through the same services as a click."""
