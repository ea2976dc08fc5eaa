"""Committed reference data (hierarchy, population, merger); see README.md. No runtime code."""
