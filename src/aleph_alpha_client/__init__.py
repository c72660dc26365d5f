"""aleph_alpha_client: a Python client for the Aleph Alpha inference API."""

__version__ = "12.0.0"
