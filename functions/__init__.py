"""Thin cloud entry points (issue 7): parse the invoke payload, call the core, publish, return."""
