"""Pure parsers: bytes in, typed records out; no network, no database."""
