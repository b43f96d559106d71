"""OPC UA security of the bridge, applied to an asyncua server in one call.

Endpoints: None, Basic256Sha256 Sign and Basic256Sha256 SignAndEncrypt. Identity tokens:
anonymous (unless disabled) and user name/password; clients are told to encrypt passwords
with the server certificate, also on the None endpoint. Certificate identity tokens are not
offered.

Trust: with certificates in ``<state_dir>/trusted/``, a client certificate presented at
CreateSession must be one of them (or issued by one), unexpired, for the application URI the
client announces and for client use; otherwise BadCertificateUntrusted (or another
BadCertificate code). The same trust is checked again at ActivateSession against the
certificate of the secure channel. Clients on the None endpoint normally present no
certificate and are not affected (one that does present one is checked all the same).
With ``trusted/`` empty, any client certificate is accepted (asyncua's default): the channel
is encrypted but the client is not authenticated by it. The directory is read at start;
restart the bridge after changing it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from icsbridge.opcua.certificates import (
    TRUSTED_NAME,
    ServerCertificate,
    default_state_dir,
    self_signed_certificate,
    trust_store,
)
from icsbridge.opcua.users import RolePermissions, user_manager

_logger = logging.getLogger(__name__)

SECURITY_POLICIES = [
    ua.SecurityPolicyType.NoSecurity,
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
]
"""The endpoints the bridge offers."""

CLIENT_CHECKS = (
    CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
)
"""What is checked of a client certificate when the trust directory is not empty."""


async def secure(
    server: Server,
    *,
    state_dir: Path | None = None,
    users_file: Path | None = None,
    certificate: Path | None = None,
    private_key: Path | None = None,
    allow_anonymous: bool = True,
    host_name: str | None = None,
) -> None:
    """Apply endpoints, certificate, trusted clients and users to `server` before its start.

    `state_dir` (default `default_state_dir()`) holds the self-signed certificate, made for
    `server.get_application_uri()` and `host_name` (default: this host), so set the
    application URI first. A site `certificate` and `private_key` (PEM or DER, key not
    encrypted) are used as they are instead. Without a `users_file`, only anonymous sessions.
    """
    if (certificate is None) != (private_key is None):
        raise ValueError("give both a certificate and its private key, or neither")
    if users_file is None and not allow_anonymous:
        raise ValueError("no users file and no anonymous sessions: nobody could log in")
    state_dir = state_dir if state_dir is not None else default_state_dir()
    if certificate is not None and private_key is not None:
        own = ServerCertificate(certificate, private_key)
    else:
        own = await self_signed_certificate(state_dir, server.get_application_uri(), host_name)
    await server.load_certificate(own.certificate)
    await server.load_private_key(own.private_key)
    _logger.info("OPC UA certificate %s", own.certificate)

    trust = await trust_store(state_dir / TRUSTED_NAME)
    if trust is not None:
        server.set_certificate_validator(CertificateValidator(CLIENT_CHECKS, trust))
    server.iserver.user_manager = user_manager(
        users_file, allow_anonymous=allow_anonymous, trust=trust
    )
    server.allow_remote_admin(False)
    server.set_security_policy(SECURITY_POLICIES, permission_ruleset=RolePermissions())
    tokens: list[type] = [ua.UserNameIdentityToken]
    if allow_anonymous:
        tokens.insert(0, ua.AnonymousIdentityToken)
    server.set_identity_tokens(tokens)
