"""The OPC UA server's certificate and the client certificates it trusts.

State directory layout (default ``$XDG_STATE_HOME/icsbridge/opcua``, else
``~/.local/state/icsbridge/opcua``)::

    server-cert.der   self-signed application certificate, created on first start
    server-key.pem    its private key (PEM, unencrypted, mode 0600)
    trusted/          client certificates (*.der or *.pem) allowed on secure endpoints

The certificate is reused while it is valid and names the same application URI and host;
otherwise asyncua's `cert_gen` makes a new one (valid 365 days) with the same key.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from asyncua.crypto.truststore import TrustStore
from cryptography.x509.oid import ExtendedKeyUsageOID

_logger = logging.getLogger(__name__)

CERTIFICATE_NAME = "server-cert.der"
PRIVATE_KEY_NAME = "server-key.pem"
TRUSTED_NAME = "trusted"
TRUSTED_SUFFIXES = frozenset({".der", ".pem"})
"""The files of the trust directory that are certificates (as asyncua's TrustStore loads)."""


@dataclass(frozen=True)
class ServerCertificate:
    """Where the server's certificate and private key are."""

    certificate: Path
    private_key: Path


def default_state_dir() -> Path:
    """Where the bridge keeps its OPC UA certificates unless told otherwise."""
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "icsbridge" / "opcua"


def default_application_uri(host_name: str | None = None) -> str:
    """The bridge's OPC UA application URI on this host: ``urn:icsbridge:<host>``."""
    return f"urn:icsbridge:{host_name or socket.gethostname()}"


async def self_signed_certificate(
    state_dir: Path, application_uri: str, host_name: str | None = None
) -> ServerCertificate:
    """The self-signed certificate in `state_dir`, created on first use and reused after."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = ServerCertificate(state_dir / CERTIFICATE_NAME, state_dir / PRIVATE_KEY_NAME)
    await cert_gen.setup_self_signed_certificate(
        found.private_key,
        found.certificate,
        application_uri,
        host_name or socket.gethostname(),
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "icsbridge"},
    )
    found.private_key.chmod(0o600)
    return found


def trusted_certificates(trust_dir: Path) -> list[Path]:
    """The client certificate files in `trust_dir`, sorted (none if it does not exist)."""
    if not trust_dir.is_dir():
        return []
    return sorted(p for p in trust_dir.iterdir() if p.suffix.lower() in TRUSTED_SUFFIXES)


async def trust_store(trust_dir: Path) -> TrustStore | None:
    """asyncua's trust store of the certificates in `trust_dir`; None when there are none."""
    trust_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = trusted_certificates(trust_dir)
    if not files:
        _logger.warning(
            "OPC UA: no client certificates in %s: any client may use the secure endpoints",
            trust_dir,
        )
        return None
    store = TrustStore([trust_dir], [])
    await store.load()
    _logger.info("OPC UA: %d trusted client certificates in %s", len(files), trust_dir)
    return store
