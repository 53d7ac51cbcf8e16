"""saropt.cli."""
