"""hairtrial: meta-analysis of arm-level trial data on androgenetic alopecia.

The statistics live here; the Snakemake workflow only moves files and calls
these functions.
"""

__version__ = "0.1.0"
