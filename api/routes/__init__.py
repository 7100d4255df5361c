"""The routes of /api/v1, one module per concept; api/v1.py puts them together."""
