"""Low-resolution encoders."""
