"""saropt.detection."""
