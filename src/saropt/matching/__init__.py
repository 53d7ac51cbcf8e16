"""saropt.matching."""
