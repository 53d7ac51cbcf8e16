"""saropt.tiling."""
