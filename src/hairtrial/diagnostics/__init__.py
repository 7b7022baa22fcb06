"""Diagnostics of fitted models: influence and small-study effects."""
