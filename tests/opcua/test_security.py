"""OPC UA security: password hashes, the users file, certificates, logins and trusted clients."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Client, Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from icsbridge.opcua.certificates import (
    CERTIFICATE_NAME,
    PRIVATE_KEY_NAME,
    TRUSTED_NAME,
    trust_store,
)
from icsbridge.opcua.security import secure
from icsbridge.opcua.users import (
    Role,
    add_user,
    display_name,
    hash_password,
    load_users,
    may_write,
    user_manager,
    verify_password,
)

from conftest import free_port

SHARED_LOOP = pytest.mark.asyncio(loop_scope="module")
"""Tests against the module's server run in the module's event loop."""

SERVER_URI = "urn:icsbridge:test"
WRITABLE = "ns=2;s=Writable"
READ_ONLY = "ns=2;s=ReadOnly"
PASSWORDS = {"rita": "rita-secret", "olga": "olga-secret", "adam": "adam-secret"}
ROLES = {"rita": Role.READER, "olga": Role.OPERATOR, "adam": Role.ADMIN}


# --- hashes and the users file -------------------------------------------------------------


def test_hash_round_trip() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("scrypt$") and "correct horse" not in hashed
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct hose", hashed)
    assert hash_password("correct horse") != hashed  # salted


def test_add_user_keeps_other_users_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(
        "# who may write to the HV\n"
        "users:\n"
        f"  bob:  # shift crew\n    role: reader\n    hash: '{hash_password('bob-pw')}'\n"
    )
    add_user(path, "alice", Role.OPERATOR, "alice-pw")
    add_user(path, "bob", Role.ADMIN, "bob-new-pw")
    text = path.read_text()
    assert "# who may write to the HV" in text and "# shift crew" in text
    assert "alice-pw" not in text and "bob-new-pw" not in text
    users = load_users(path).users
    assert {name: user.role for name, user in users.items()} == {
        "bob": Role.ADMIN,
        "alice": Role.OPERATOR,
    }
    assert verify_password("bob-new-pw", users["bob"].hash)
    assert verify_password("alice-pw", users["alice"].hash)


def test_add_user_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "alice", Role.READER, "pw")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_users(path).users["alice"].role is Role.READER


def test_role_check_of_asyncua_users() -> None:
    assert not may_write(None) and display_name(None) == "anonymous"
    assert not may_write(User(role=UserRole.Anonymous, name="rita"))
    assert may_write(User(role=UserRole.User, name="olga"))
    assert display_name(User(role=UserRole.User, name="olga")) == "olga"
    assert display_name(User(role=UserRole.Admin)) == "internal"


def test_anonymous_sessions_can_be_disabled(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "olga", Role.OPERATOR, "olga-pw")
    manager = user_manager(path, allow_anonymous=False)
    assert manager.get_user(None) is None
    olga = manager.get_user(None, username="olga", password="olga-pw")
    assert olga is not None and may_write(olga) and display_name(olga) == "olga"


async def test_secure_refuses_settings_nobody_could_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nobody"):
        await secure(Server(), state_dir=tmp_path, allow_anonymous=False)
    with pytest.raises(ValueError, match="both"):
        await secure(Server(), state_dir=tmp_path, certificate=tmp_path / "cert.der")


# --- certificates --------------------------------------------------------------------------


async def test_certificate_is_created_once_and_reused(tmp_path: Path) -> None:
    first, second = Server(), Server()
    await secure(first, state_dir=tmp_path)
    created = (tmp_path / CERTIFICATE_NAME).read_bytes()
    assert (tmp_path / PRIVATE_KEY_NAME).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / TRUSTED_NAME).is_dir()
    await secure(second, state_dir=tmp_path)
    assert (tmp_path / CERTIFICATE_NAME).read_bytes() == created
    assert first.iserver.certificate == second.iserver.certificate


async def test_a_site_certificate_is_used_as_it_is(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    certificate, key = await make_certificate(site, "urn:site", ExtendedKeyUsageOID.SERVER_AUTH)
    server = Server()
    await secure(server, state_dir=tmp_path / "state", certificate=certificate, private_key=key)
    assert not (tmp_path / "state" / CERTIFICATE_NAME).exists()
    assert server.iserver.certificate is not None
    assert server.iserver.certificate.public_bytes(Encoding.DER) == certificate.read_bytes()


# --- logins against a served address space -------------------------------------------------


@dataclass
class Served:
    """A secured server under test: its address and the writes its callback saw."""

    url: str
    writes: list[tuple[str, bool]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serving(state_dir: Path, users_file: Path | None) -> AsyncIterator[Served]:
    """A secured asyncua server on 127.0.0.1 with a writable and a read-only variable."""
    server = Server()
    await server.init()
    served = Served(f"opc.tcp://127.0.0.1:{free_port()}/")
    server.set_endpoint(served.url)
    await server.set_application_uri(SERVER_URI)
    assert await server.register_namespace("urn:test") == 2
    objects = server.nodes.objects
    writable = await objects.add_variable(ua.NodeId("Writable", 2), "Writable", 1.0)
    await writable.set_writable()
    await objects.add_variable(ua.NodeId("ReadOnly", 2), "ReadOnly", 2.0)

    def record(event: ServerItemCallback, _: object) -> None:
        if event.is_external:
            served.writes.append((display_name(event.user), may_write(event.user)))

    server.subscribe_server_callback(CallbackType.PostWrite, record)
    await secure(server, state_dir=state_dir, users_file=users_file, host_name="localhost")
    async with server:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """One server for the login tests, with a reader, an operator and an admin."""
    state = tmp_path_factory.mktemp("state")
    users = state / "users.yaml"
    for name, password in PASSWORDS.items():
        add_user(users, name, ROLES[name], password)
    async with serving(state, users) as running:
        yield running


@contextlib.asynccontextmanager
async def session(url: str, user: str | None = None) -> AsyncIterator[Client]:
    """A client session, anonymous or as `user` with its password."""
    client = Client(url, timeout=5)
    if user is not None:
        client.set_user(user)
        client.set_password(PASSWORDS.get(user, "wrong"))
    async with client:
        yield client


@SHARED_LOOP
async def test_anonymous_reads_but_cannot_write(served: Served) -> None:
    async with session(served.url) as client:
        node = client.get_node(WRITABLE)
        assert await node.read_value() == pytest.approx(1.0)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await node.write_value(5.0)


@SHARED_LOOP
async def test_a_reader_reads_but_cannot_write(served: Served) -> None:
    async with session(served.url, "rita") as client:
        node = client.get_node(WRITABLE)
        assert await node.read_value() == pytest.approx(1.0)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await node.write_value(5.0)


@SHARED_LOOP
async def test_an_operator_writes_values_only(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    async with session(served.url, "olga") as client:
        node = client.get_node(WRITABLE)
        await node.write_value(3.0)
        assert await node.read_value() == pytest.approx(3.0)
        assert ("olga", True) in served.writes
        assert "plain-text password" not in caplog.text
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await client.get_node(READ_ONLY).write_value(5.0)
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await node.write_attribute(
                ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText("renamed")))
            )


@SHARED_LOOP
async def test_an_admin_writes_other_attributes(served: Served) -> None:
    async with session(served.url, "adam") as client:
        node = client.get_node(READ_ONLY)
        await node.write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText("by adam")))
        )
        assert (await node.read_description()).Text == "by adam"


@SHARED_LOOP
@pytest.mark.parametrize("user", ["rita-wrong", "nobody"])
async def test_a_wrong_password_cannot_log_in(served: Served, user: str) -> None:
    client = Client(served.url, timeout=5)
    client.set_user(user.removesuffix("-wrong"))
    client.set_password("wrong")
    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        await client.connect()
    async with session(served.url, "olga"):
        pass  # the server still serves


# --- trusted client certificates -----------------------------------------------------------


async def make_certificate(directory: Path, uri: str, usage: ObjectIdentifier) -> tuple[Path, Path]:
    """A self-signed certificate and key for application `uri`, in `directory`."""
    certificate = directory / f"{uri.rsplit(':', 1)[-1]}.der"
    key = directory / f"{certificate.stem}-key.pem"
    await cert_gen.setup_self_signed_certificate(key, certificate, uri, "localhost", [usage], {})
    return certificate, key


async def secure_client(url: str, certificate: Path, key: Path, uri: str) -> Client:
    """A client of `url` on Basic256Sha256 SignAndEncrypt with its own certificate."""
    client = Client(url, timeout=5)
    client.application_uri = uri
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(certificate),
        str(key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    return client


async def test_only_trusted_clients_use_the_secure_endpoints(tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    clients.mkdir()
    trusted_uri, stranger_uri = "urn:test:trusted", "urn:test:stranger"
    trusted = await make_certificate(clients, trusted_uri, ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger = await make_certificate(clients, stranger_uri, ExtendedKeyUsageOID.CLIENT_AUTH)
    state = tmp_path / "state"
    (state / TRUSTED_NAME).mkdir(parents=True)
    shutil.copy(trusted[0], state / TRUSTED_NAME)

    async with serving(state, None) as running:
        client = await secure_client(running.url, *trusted, trusted_uri)
        async with client:
            assert await client.get_node(WRITABLE).read_value() == pytest.approx(1.0)

        client = await secure_client(running.url, *stranger, stranger_uri)
        with pytest.raises(ua.uaerrors.BadCertificateUntrusted):
            await client.connect()

        async with session(running.url) as plain:  # the None endpoint takes no certificate
            assert await plain.get_node(WRITABLE).read_value() == pytest.approx(1.0)


async def test_sessions_on_untrusted_channels_are_refused(tmp_path: Path) -> None:
    """A client that opens a secure channel but presents no certificate at CreateSession."""
    trusted = await make_certificate(tmp_path, "urn:test:trusted", ExtendedKeyUsageOID.CLIENT_AUTH)
    stranger = await make_certificate(tmp_path, "urn:test:other", ExtendedKeyUsageOID.CLIENT_AUTH)
    (tmp_path / TRUSTED_NAME).mkdir()
    shutil.copy(trusted[0], tmp_path / TRUSTED_NAME)
    manager = user_manager(None, trust=await trust_store(tmp_path / TRUSTED_NAME))
    assert manager.get_user(None, certificate=trusted[0].read_bytes()) is not None
    assert manager.get_user(None, certificate=stranger[0].read_bytes()) is None
    assert manager.get_user(None, certificate=None) is not None  # the None endpoint
