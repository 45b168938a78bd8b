"""Self-signed TLS certificates for 127.0.0.1/localhost test servers, made with the openssl CLI."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devservices.ports import DevServiceError, ensure_debian_packages


@dataclass(frozen=True)
class CertPair:
    """A certificate and its key; the certificate is its own CA, so it is also the client's cafile."""

    cert: Path
    key: Path

    @property
    def cafile(self) -> Path:
        return self.cert

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.cert)


def client_context(cafile: Path | str) -> ssl.SSLContext:
    """A verifying client context (hostname checked) that trusts only `cafile`."""
    return ssl.create_default_context(cafile=str(cafile))


def self_signed(
    directory: Path | str,
    *,
    name: str = "devservices",
    dns_names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    days: int = 30,
) -> CertPair:
    """Create (or reuse) DIR/NAME.crt and DIR/NAME.key, valid for the given names and addresses.

    An EC P-256 key: generated in milliseconds, unlike RSA, and accepted by Dovecot, aiosmtpd and Python.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertPair(cert=directory / f"{name}.crt", key=directory / f"{name}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    if shutil.which("openssl") is None:
        ensure_debian_packages(["openssl"])
    san = ",".join([*(f"DNS:{d}" for d in dns_names), *(f"IP:{i}" for i in ips)])
    cn = dns_names[0] if dns_names else ips[0]
    argv = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", str(days), "-subj", f"/CN={cn}",
        "-addext", f"subjectAltName={san}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-keyout", str(pair.key), "-out", str(pair.cert),
    ]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise DevServiceError(f"openssl could not make a certificate: {res.stderr.strip()}")
    pair.key.chmod(0o600)
    pair.cert.chmod(0o644)
    return pair
