"""saropt.io."""
