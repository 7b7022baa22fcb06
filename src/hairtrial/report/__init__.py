"""Outputs: table renderings, figures of a run, the HTML report, executed notebooks."""
