"""Readers for third-party file formats that backends load weights from (no framework needed)."""
