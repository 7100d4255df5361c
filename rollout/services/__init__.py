"""Writes and reads that span several models or call out, one module per concept."""
