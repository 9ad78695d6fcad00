"""Thin cloud entry points: parse the invoke payload, call the core, publish, return.

The flow of a scheduled run is in docs/architecture.md, Scheduled runs.
"""
