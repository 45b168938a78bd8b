"""Mailbox intake system for a municipal call for applications."""

__version__ = "0.1.0"
