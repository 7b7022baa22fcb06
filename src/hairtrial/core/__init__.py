"""Shared plumbing with no statistics.

Array coercion, atomic file output, run logs, the vocabulary."""
