"""The OPC UA server: the mapping's address space, kept current from the client's cache.

Client writes of item values go through the bridge's one write path and are answered only
once the iCS confirmed them; everything else a client writes goes to asyncua as usual.
One task publishes values and link quality for all variables: every change in order, the
newest value of each item only when it falls far behind. A value its variable cannot hold is
published as such, on its own, and should the task itself ever fail it starts over.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import reprlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User
from asyncua.server.address_space import AttributeValue
from asyncua.server.server import Server
from asyncua.server.subscription_service import SubscriptionService

from icsbridge.core.faces import ItemWriter, Link
from icsbridge.core.freezer import Freezer
from icsbridge.core.supervise import keep_running
from icsbridge.core.writes import AccessRefused, RangeRefused, TypeRefused, subject
from icsbridge.ics.cache import Update, newest
from icsbridge.ics.client import LinkDown, LinkState, WriteRejected, WriteUnconfirmed
from icsbridge.logs import Throttle
from icsbridge.mapping.document import Mapping
from icsbridge.model import ItemKey

from .attributes import own
from .certificates import default_application_uri
from .limits import LIMITS, LimitedServer, Limits
from .notify import Now, SharedValue, check_encodes, encode_datachanges, in_range, set_value
from .process import DEFAULT_ENDPOINT
from .space import ADMIN, Space, Variable, build
from .users import display_name, may_write, may_write_attributes

log = logging.getLogger(__name__)

YIELD_EVERY = 500
"""Variables published before the publisher lets other tasks run."""
COALESCE_ABOVE = 50_000
"""Updates waiting beyond which the publisher keeps only the newest value of each item."""

Status = ua.StatusCodes
REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (TypeRefused, Status.BadTypeMismatch),
    (RangeRefused, Status.BadOutOfRange),
    (AccessRefused, Status.BadNotWritable),
    (LinkDown, Status.BadCommunicationError),
    (WriteUnconfirmed, Status.BadTimeout),
    (WriteRejected, Status.BadOutOfRange),
)
"""The status code a client gets for each way a write can fail."""


class UaServer:
    """The OPC UA face of one iCS.

    `endpoint` is where it listens (default `DEFAULT_ENDPOINT`), `secure` sets up its
    security (default none), `limits` caps sessions, subscriptions, monitored items and
    message sizes (default `limits.LIMITS`, sized for a 100,000-item site).
    """

    def __init__(
        self,
        client: Link,
        mapping: Mapping,
        writer: ItemWriter,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        secure: Callable[[Server], Awaitable[None]] | None = None,
        limits: Limits = LIMITS,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.writer = writer
        self.endpoint = endpoint
        self._secure = secure
        self.server = LimitedServer(limits)
        self.space = Space(0, {})
        self._values: dict[ItemKey, tuple[Variable, AttributeValue]] = {}
        self._pending: list[Update] = []
        self._link_changed = True
        self._wake = asyncio.Event()
        self._freezer = Freezer()
        self.bad_values = Throttle(log)
        """Values a variable cannot hold, published as null and BadOutOfRange."""
        self.bad_times = Throttle(log)
        """Source times OPC UA cannot carry, published as the server time."""
        self.unpublished = Throttle(log, level=logging.ERROR)
        """Values that failed to publish for any other reason."""

    async def setup(self) -> Space:
        """Build the address space and the security settings; does not listen yet."""
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("icsbridge")
        await server.set_application_uri(default_application_uri())
        if self._secure is not None:
            await self._secure(server)
        self.space = space = await build(server, self.mapping)
        gc.freeze()  # nor the address space
        aspace = server.iserver.aspace
        self._values = {
            key: (variable, aspace[variable.node].attributes[ua.AttributeIds.Value])
            for key, variable in space.variables.items()
        }
        service = server.iserver.attribute_service
        service.write = self._write_hook(service.write)  # type: ignore[method-assign,assignment]
        subscriptions = server.iserver.subscription_service
        subscriptions.create_monitored_items = self._freezing(  # type: ignore[method-assign,assignment]
            subscriptions.create_monitored_items
        )
        subscriptions.create_subscription = _encoding(subscriptions)  # type: ignore[method-assign,assignment]
        return space  # the first publish takes every value: the link counts as changed

    # --- values from the iCS -------------------------------------------------------------

    def _take(self, updates: Sequence[Update]) -> None:
        if not self._link_changed:  # else the publisher takes every latest value anyway
            self._pending += updates  # the publisher skips items without a variable
        self._wake.set()

    def _link(self, state: LinkState) -> None:
        self._link_changed = True
        self._wake.set()

    def _status(self) -> ua.StatusCode:
        """Good; UncertainLastUsableValue while the iCS is silent; Bad once the link is lost."""
        if self.client.state is not LinkState.READY:
            return ua.StatusCode(Status.BadCommunicationError)
        if self.client.silent:
            return ua.StatusCode(Status.UncertainLastUsableValue)
        return ua.StatusCode(Status.Good)

    async def _publish(self) -> None:
        """The one publisher: new values, and the link's quality on every variable."""
        values = self._values
        cache = self.client.cache
        while True:
            await self._wake.wait()
            self._wake.clear()
            status = self._status()
            pending, self._pending = self._pending, []
            if self._link_changed:
                self._link_changed = False
                latest = (cache.get(key) for key in values)
                pending = [update for update in latest if update is not None]
            elif len(pending) > COALESCE_ABOVE:  # behind: only the newest value of each item
                pending = newest(pending)
            now = Now.read()
            for count, update in enumerate(pending, 1):
                target = values.get(update.key)
                if target is None:
                    continue
                variable, attribute = target
                try:
                    value = self._stamped(variable, update, status, now)
                    for callback, handle in set_value(attribute, value):
                        await callback(handle, value)
                except Exception as exc:
                    self.unpublished("could not publish %s: %r", variable.node.Identifier, exc)
                    log.debug("could not publish %s", variable.node.Identifier, exc_info=True)
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)

    def _stamped(
        self, variable: Variable, update: Update, status: ua.StatusCode, now: Now
    ) -> SharedValue:
        """An update as its variable's value, checked to encode, so that a value that does
        not never reaches a subscription or a read: a null one while the link is bad (Part 4
        §7.7.1), a null one with BadOutOfRange if the variable cannot hold it, and the server
        time `now` for a source time OPC UA cannot carry; each of those counted and logged."""
        source = update.time
        if source is not None and not in_range(source):
            self.bad_times(
                "%s: source time %s out of range, the server time used instead",
                variable.node.Identifier,
                _shown(source),
            )
        if status.is_bad():
            return SharedValue.stamped(NULL, status, source, now)
        try:
            value = variable.to_ua(update.value)
            check_encodes(value)
        except Exception as exc:
            self.bad_values(
                "%s: %s is no %s (%s): published as BadOutOfRange",
                variable.node.Identifier,
                _shown(update.value),
                variable.variant.name,
                exc,
            )
            return SharedValue.stamped(NULL, OUT_OF_RANGE, source, now)
        return SharedValue.stamped(value, status, source, now)

    def _freezing(
        self, create: Callable[[ua.CreateMonitoredItemsParameters], Awaitable[list[Any]]]
    ) -> Callable[[ua.CreateMonitoredItemsParameters], Awaitable[list[Any]]]:
        """CreateMonitoredItems, after which the new monitored items are frozen soon."""

        async def create_then_freeze(params: ua.CreateMonitoredItemsParameters) -> list[Any]:
            try:
                return await create(params)
            finally:
                self._freezer.soon()

        return create_then_freeze

    # --- writes from clients ---------------------------------------------------------------

    def _write_hook(
        self, original: Callable[..., Awaitable[list[ua.StatusCode]]]
    ) -> Callable[..., Awaitable[list[ua.StatusCode]]]:
        nodes = {variable.node: variable for variable in self.space.variables.values()}
        aspace = self.server.iserver.aspace

        async def write(params: ua.WriteParameters, user: User = ADMIN) -> list[ua.StatusCode]:
            results = []
            for value in params.NodesToWrite:
                variable = nodes.get(value.NodeId)
                if variable is None or value.AttributeId != ua.AttributeIds.Value:
                    if may_write_attributes(user):
                        own(aspace, value.NodeId, value.AttributeId)
                    single = ua.WriteParameters(NodesToWrite=[value])
                    results += await original(single, user)
                else:
                    results.append(await self._write_item(variable, value, user))
            return results

        return write

    async def _write_item(
        self, variable: Variable, value: ua.WriteValue, user: User
    ) -> ua.StatusCode:
        who = display_name(user)
        pv = subject(variable.entry)
        if not may_write(user):
            log.warning("write %s by %s via OPC UA: refused: may not write", pv, who)
            return ua.StatusCode(Status.BadUserAccessDenied)
        if value.Value is None or value.Value.Value is None:
            return ua.StatusCode(Status.BadTypeMismatch)
        variant = value.Value.Value
        if variant.VariantType is not variable.variant:
            log.warning(
                "write %s by %s via OPC UA: refused: %s is not %s",
                pv,
                who,
                variant.VariantType.name,
                variable.variant.name,
            )
            return ua.StatusCode(Status.BadTypeMismatch)
        try:
            item_value = variable.from_ua(variant.Value)
            await self.writer.write(variable.entry.key, item_value, who=who, via="OPC UA")
        except TypeError:
            return ua.StatusCode(Status.BadTypeMismatch)
        except Exception as exc:
            for kind, code in REFUSALS:
                if isinstance(exc, kind):
                    return ua.StatusCode(code)
            log.exception("write %s by %s via OPC UA failed", pv, who)
            return ua.StatusCode(Status.BadInternalError)
        return ua.StatusCode(Status.Good)

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled."""
        if not self.space.variables:
            await self.setup()
        stop_updates = self.client.cache.subscribe(self._take)
        stop_states = self.client.on_state(self._link)
        self._wake.set()
        publishing = keep_running(
            self._publish, "OPC UA publisher", lambda: self._link(self.client.state), log
        )
        publisher = asyncio.create_task(publishing, name="opcua-publish")
        try:
            async with self.server:
                log.info(
                    "serving %d variables over OPC UA at %s",
                    len(self.space.variables),
                    self.endpoint,
                )
                await asyncio.Event().wait()
        finally:
            stop_updates()
            stop_states()
            self._freezer.cancel()
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)


def _encoding(
    service: SubscriptionService,
) -> Callable[..., Awaitable[ua.CreateSubscriptionResult]]:
    """CreateSubscription, after which a client's subscription encodes its own data changes."""
    create = service.create_subscription

    async def create_encoding(*args: Any, **kwargs: Any) -> ua.CreateSubscriptionResult:
        result = await create(*args, **kwargs)
        subscription = service.subscriptions[result.SubscriptionId]
        if subscription.pub_request_callback is not None:  # not one of asyncua's own
            subscription._pop_triggered_datachanges = functools.partial(  # type: ignore[method-assign]
                encode_datachanges, subscription
            )
        return result

    return create_encoding


def _shown(value: object) -> str:
    """A value as the log shows it: short, whatever its size."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return reprlib.repr(value)


NULL = ua.Variant(None, ua.VariantType.Null)
OUT_OF_RANGE = ua.StatusCode(Status.BadOutOfRange)
