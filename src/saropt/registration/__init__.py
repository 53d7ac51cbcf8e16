"""saropt.registration."""
