"""`rollout-control`: the command line client of Rollout Control's token API (/api/v1).

A pure HTTP client: it imports nothing from the Django project, so it can be installed and run
on a CI runner or a laptop that has only the server's address and a token.
"""
