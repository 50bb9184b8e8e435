"""Reliability: faults, interruption, bad input and secrets (``bench/reliability.py`` reports)."""
