"""saropt.quality."""
