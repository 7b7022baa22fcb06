"""Input data.

The input contract and its validation, units, provenance codes, PRISMA counts, and the
simulator of input data."""
