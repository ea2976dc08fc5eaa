"""Fault injection: one pipeline run per fault, final stores checked against what was sent."""
