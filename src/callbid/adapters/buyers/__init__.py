"""Buyers' ping APIs: dialects (build a request, parse an answer) and the fan-out executor."""
