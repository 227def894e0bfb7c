"""A domain that exists only in the test tree: e-scooter positions (the plug-in contract's proof)."""
