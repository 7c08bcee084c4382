"""Shared helpers: project paths, params loading, atomic outputs, environment defaults."""
