"""saropt.synthetic."""
