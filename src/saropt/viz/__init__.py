"""saropt.viz."""
