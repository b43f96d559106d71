"""OPC UA users: roles, scrypt password hashes, the users file and asyncua's view of them.

The users file is YAML, one entry per user name::

    users:
      alice: {role: operator, hash: "scrypt$n=16384,r=8,p=1$<salt>$<key>"}

Roles and what asyncua makes of them (asyncua 2.1 knows Admin, User and Anonymous):

- anonymous and ``reader`` map to ``UserRole.Anonymous``: browse, read, subscribe; no Write,
  no Call (refused by `RolePermissions` with BadUserAccessDenied);
- ``operator`` maps to ``UserRole.User``: may also write the Value of nodes whose AccessLevel
  and UserAccessLevel have CurrentWrite (asyncua checks both); no other attribute;
- ``admin`` maps to ``UserRole.Admin``: asyncua lets Admin write any attribute of any node,
  bypassing AccessLevel, and add or delete nodes and references.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from asyncua import ua
from asyncua.crypto.permission_rules import (
    ADMIN_TYPES,
    USER_TYPES,
    SimpleRoleRuleset,
    User,
    UserRole,
)
from asyncua.crypto.truststore import TrustStore
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager
from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

_logger = logging.getLogger(__name__)


class Role(StrEnum):
    """What a user of the users file may do."""

    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"


ASYNCUA_ROLES: Mapping[Role, UserRole] = {
    Role.READER: UserRole.Anonymous,
    Role.OPERATOR: UserRole.User,
    Role.ADMIN: UserRole.Admin,
}
"""The asyncua role a session of each bridge role gets."""

WRITERS = frozenset({UserRole.User, UserRole.Admin})
"""asyncua roles whose sessions may write item values."""

# --- password hashes -----------------------------------------------------------------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt cost of new hashes: 16 MiB and about 50 ms per hash."""

HASH_PATTERN = r"^scrypt\$n=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$"
"""``scrypt$n=N,r=R,p=P$<salt base64>$<key base64>``."""

_HASH = re.compile(HASH_PATTERN)


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, with its salt and parameters in the string."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches `hashed` (constant-time comparison)."""
    if not _HASH.match(hashed):
        raise ValueError("not an scrypt hash of icsbridge")
    _, params, salt, key = hashed.split("$")
    cost = {name: int(value) for name, value in (p.split("=") for p in params.split(","))}
    expected = base64.b64decode(key)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=cost["n"],
        r=cost["r"],
        p=cost["p"],
        maxmem=256 * cost["r"] * cost["n"] * cost["p"],
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked against for unknown user names, so that they take as long as wrong passwords."""
    return hash_password(secrets.token_urlsafe())


# --- the users file ------------------------------------------------------------------------

UserName = Annotated[str, StringConstraints(pattern=r"^[^\s:]+$")]


class UserEntry(BaseModel):
    """One user of the users file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    hash: str = Field(pattern=HASH_PATTERN, description="hash_password() of the password")


class UsersFile(BaseModel):
    """The users file: user name to role and password hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    users: dict[UserName, UserEntry] = Field(default_factory=dict)


def load_users(path: Path) -> UsersFile:
    """The validated users file at `path`."""
    return UsersFile.model_validate(YAML(typ="safe").load(path) or {})


def add_user(path: Path, name: str, role: Role, password: str) -> None:
    """Create or update user `name` in the users file, keeping other users and comments."""
    yaml = YAML()
    document = (yaml.load(path) if path.exists() else None) or CommentedMap()
    if document.get("users") is None:
        document["users"] = CommentedMap()
    users = document["users"]
    entry = users.get(name)
    if not isinstance(entry, dict):
        entry = users[name] = CommentedMap()
    entry["role"] = role.value
    entry["hash"] = hash_password(password)
    UsersFile.model_validate(document)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w") as stream:
            yaml.dump(document, stream)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# --- asyncua -------------------------------------------------------------------------------


def _user(who: User | InternalSession | None) -> User:
    if isinstance(who, InternalSession):
        return who.user
    return User(role=UserRole.Anonymous) if who is None else who


def may_write(who: User | InternalSession | None) -> bool:
    """Whether the session (or its asyncua user) may write item values."""
    return _user(who).role in WRITERS


def may_write_attributes(who: User | InternalSession | None) -> bool:
    """Whether the session may write attributes other than values (asyncua lets admins)."""
    return _user(who).role is UserRole.Admin


def display_name(who: User | InternalSession | None) -> str:
    """The user name of a session for logs: its name, "anonymous", or "internal" (the server)."""
    user = _user(who)
    if user.name:
        return user.name
    return "anonymous" if user.role is UserRole.Anonymous else "internal"


class RolePermissions(SimpleRoleRuleset):
    """asyncua's `SimpleRoleRuleset`, except that Anonymous may read (not write, not call)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # asyncua: untyped
        everyday = {ua.NodeId(type_id) for type_id in USER_TYPES}
        writing = {
            ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary),
            ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary),
        }
        self._allowed: dict[UserRole, frozenset[ua.NodeId]] = {
            UserRole.Anonymous: frozenset(everyday - writing),
            UserRole.User: frozenset(everyday),
            UserRole.Admin: frozenset(everyday | {ua.NodeId(t) for t in ADMIN_TYPES}),
        }

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        """Whether `user` may call the service of request type `action_type_id`."""
        return action_type_id in self._allowed[user.role]


class BridgeUserManager(UserManager):
    """Logs sessions in: anonymous, or a user name and password of the users file.

    Certificate identity tokens are never offered (`secure` leaves them out), so they never
    get here. asyncua passes the client's channel certificate along with anonymous and
    user-name logins: with a `trust` store, a session on a secure channel whose certificate
    is not trusted is refused, whatever its identity.
    """

    def __init__(
        self,
        users: Mapping[str, UserEntry],
        *,
        allow_anonymous: bool = True,
        trust: TrustStore | None = None,
    ) -> None:
        self.users = dict(users)
        self.allow_anonymous = allow_anonymous
        self.trust = trust

    def _trusted(self, certificate: bytes) -> bool:
        return self.trust is None or self.trust.is_trusted(
            x509.load_der_x509_certificate(certificate)
        )

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: bytes | None = None,
    ) -> User | None:
        """The asyncua user of a login, or None to refuse it (BadUserAccessDenied)."""
        if certificate and not self._trusted(certificate):
            _logger.warning("OPC UA login refused: client certificate not trusted")
            return None
        if username is None:
            if not self.allow_anonymous:
                _logger.warning("OPC UA login refused: anonymous sessions are disabled")
            return User(role=UserRole.Anonymous) if self.allow_anonymous else None
        entry = self.users.get(username)
        matches = verify_password(password or "", entry.hash if entry else _dummy_hash())
        if entry is None or not matches:
            _logger.warning("OPC UA login refused: user %r, wrong name or password", username)
            return None
        return User(role=ASYNCUA_ROLES[entry.role], name=username)


def user_manager(
    users_file: Path | None, *, allow_anonymous: bool = True, trust: TrustStore | None = None
) -> BridgeUserManager:
    """The user manager of the users file (None: anonymous sessions only)."""
    users = load_users(users_file).users if users_file is not None else {}
    return BridgeUserManager(users, allow_anonymous=allow_anonymous, trust=trust)
