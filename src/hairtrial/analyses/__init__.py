"""The analyses the workflow runs, as functions of a validated config.

The only layer that reads a config."""
