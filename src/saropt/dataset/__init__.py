"""saropt.dataset."""
