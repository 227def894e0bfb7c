"""its package."""
