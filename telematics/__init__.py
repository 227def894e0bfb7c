"""telematics package."""
