"""Derivation: dispersion conversions, arm-level changes, comparisons and effect sizes."""
