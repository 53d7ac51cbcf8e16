"""saropt.data."""
