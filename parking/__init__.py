"""parking package."""
