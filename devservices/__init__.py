"""Real-service runners (Dovecot, PostgreSQL, SMTP, a TCP proxy) shared by tests, benchmarks and the demo."""

from devservices.ports import DevServiceError, ensure_debian_packages, free_port

__all__ = ["DevServiceError", "ensure_debian_packages", "free_port"]
