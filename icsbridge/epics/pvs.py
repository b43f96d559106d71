"""Channel Access PVs of mapped items: caproto channel data that write through the bridge.

Each PV carries its mapping entry. Puts go to the shared `Writer` (checked locally, then a
confirmed setItem); values, time stamps and alarms arrive from the iCS through `apply`.
The record fields tools ask for (`.EGU .PREC .DESC .DRVH .DRVL .HOPR .LOPR .RTYP .STAT
.SEVR`) are made when first asked for, so unused ones cost nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from caproto import (
    AccessRights,
    AlarmSeverity,
    AlarmStatus,
    ChannelAlarm,
    ChannelChar,
    ChannelData,
    ChannelDouble,
    ChannelEnum,
    ChannelInteger,
    ChannelString,
    ChannelType,
    TimeStamp,
    native_type,
)

from icsbridge.catalog import Severity, ValueType, catalog
from icsbridge.core.writes import TypeRefused, Writer, subject
from icsbridge.epics.records import MAX_STATES, MAX_STRING, record_type
from icsbridge.ics.values import Value, integral, parse_number
from icsbridge.mapping.document import ItemEntry

from . import monitors

log = logging.getLogger(__name__)

ENCODING = "utf-8"
"""Text on the wire, units such as °C included, as the generated database files have it."""


Alarm = tuple[AlarmStatus, AlarmSeverity]
NO_ALARM: Alarm = (AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)
LINK_DOWN: Alarm = (AlarmStatus.COMM, AlarmSeverity.INVALID_ALARM)
NEVER_READ: Alarm = (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)
BAD_STATE: Alarm = (AlarmStatus.STATE, AlarmSeverity.INVALID_ALARM)


class AlarmPool:
    """One shared `ChannelAlarm` per (status, severity): PVs point at the one they are in.

    Shared alarms are never written, only handed out, so no PV can change another's.
    """

    def __init__(self) -> None:
        self._alarms: dict[Alarm, ChannelAlarm] = {}

    def __getitem__(self, alarm: Alarm) -> ChannelAlarm:
        found = self._alarms.get(alarm)
        if found is None:
            found = self._alarms[alarm] = ChannelAlarm(status=alarm[0], severity=alarm[1])
        return found


ALARMS = AlarmPool()


class ItemPV:
    """What every item PV adds to caproto's channel data (a mixin)."""

    entry: ItemEntry
    writer: Writer
    _fields: dict[str, ChannelData]
    _value_alarm: Alarm
    _link_up: bool
    _severities: dict[str, Severity]
    _limits: tuple[tuple[float, bool, Alarm], ...]
    taps: dict[Any, monitors.Tap]
    """Subscription specs served by the direct monitor path (`monitors.Fanout`)."""
    unix_time: float
    """Time stamp of the value, in UNIX seconds."""
    _stamp_due: bool

    def _bridge_init(self, entry: ItemEntry, writer: Writer) -> None:
        self.entry = entry
        self.writer = writer
        self.taps = {}
        self.unix_time = time.time()
        self._stamp_due = True
        self._fields = {}
        self._value_alarm = NEVER_READ
        self._link_up = False
        spec = catalog().get(entry.key.path.level, entry.item)
        self._severities = spec.severities if spec else {}
        self._limits = tuple(
            (limit, high, alarm)
            for limit, high, alarm in (
                (entry.alarm_high, True, (AlarmStatus.HIHI, AlarmSeverity.MAJOR_ALARM)),
                (entry.alarm_low, False, (AlarmStatus.LOLO, AlarmSeverity.MAJOR_ALARM)),
                (entry.warn_high, True, (AlarmStatus.HIGH, AlarmSeverity.MINOR_ALARM)),
                (entry.warn_low, False, (AlarmStatus.LOW, AlarmSeverity.MINOR_ALARM)),
            )
            if limit is not None
        )

    # --- values from the iCS ---------------------------------------------------------

    def to_ca(self, value: Value) -> Any:
        """The iCS value as this channel holds it."""
        return value

    def wire_value(self) -> Any:
        """The current value as the native DBR type packs it."""
        return self._data["value"]  # type: ignore[attr-defined]

    def put_value(self, data: Any, native: ChannelType) -> float | int | str:
        """What a client put, as the type it put it as: text, or its first number."""
        if native is ChannelType.STRING:
            if not data:
                raise ValueError("no value")
            return data[0].split(b"\0", 1)[0].decode(ENCODING)  # type: ignore[no-any-return]
        if len(data) == 0:
            raise ValueError("no value")
        if native in (ChannelType.DOUBLE, ChannelType.FLOAT):
            return float(data[0])
        return int(data[0])

    def from_client(self, value: float | int | str) -> Value:
        """A client's value as the iCS item takes it; ValueError says why it cannot be."""
        raise NotImplementedError

    def value_alarm(self, value: Value) -> Alarm:
        """The alarm the value itself raises: states and the mapping's alarm limits."""
        if self._severities:
            severity = self._severities.get(_wire(value))  # type: ignore[arg-type]
            if severity:
                return (AlarmStatus.STATE, _SEVERITY[severity])
        if self._limits and isinstance(value, float):
            for limit, high, alarm in self._limits:
                if value >= limit if high else value <= limit:
                    return alarm
        return NO_ALARM

    def apply(self, value: Value, time: float | None) -> None:
        """Take a new value from the iCS (no publishing: the caller does that)."""
        data = self._data  # type: ignore[attr-defined]
        try:
            data["value"] = self.to_ca(value)
        except ValueError as exc:
            log.warning("%s: kept the last value: %s", self.entry.pv, exc)
            self._value_alarm = BAD_STATE
        else:
            self._value_alarm = self.value_alarm(value)
        if time is not None:
            self.unix_time = time
            self._stamp_due = True
        self._set_alarm()

    def link(self, up: bool) -> None:
        """Follow the state of the iCS link: while it is down the PV is INVALID/COMM."""
        self._link_up = up
        self._set_alarm()

    def _set_alarm(self) -> None:
        alarm = self._value_alarm if self._link_up else LINK_DOWN
        self.alarm = ALARMS[alarm]

    # --- reads and subscriptions ----------------------------------------------------------

    async def _read(self, data_type: ChannelType) -> Any:
        if self._stamp_due:  # made only when caproto reads it: most updates never are
            self._data["timestamp"] = TimeStamp.from_unix_timestamp(self.unix_time)  # type: ignore[attr-defined]
            self._stamp_due = False
        return await super()._read(data_type)  # type: ignore[misc]

    async def subscribe(self, queue: Any, sub_spec: Any, sub: Any) -> None:
        """Serve a subscription through the direct path where it can; caproto's otherwise."""
        if monitors.fast(self, sub_spec):
            sub.circuit.context.fanout.subscribe(self, sub_spec, sub)
        else:
            await super().subscribe(queue, sub_spec, sub)  # type: ignore[misc]

    async def unsubscribe(self, queue: Any, sub_spec: Any) -> None:
        """The last subscription of a spec is gone."""
        if self.taps.pop(sub_spec, None) is None:
            await super().unsubscribe(queue, sub_spec)  # type: ignore[misc]

    # --- puts from clients ---------------------------------------------------------------

    def check_access(self, hostname: str, username: str) -> AccessRights:
        """Read for everyone; write too where the item and the bridge allow it."""
        if self.entry.access.writable and not self.writer.read_only:
            return AccessRights.READ | AccessRights.WRITE
        return AccessRights.READ

    async def auth_write(
        self,
        hostname: str,
        username: str,
        data: Any,
        data_type: ChannelType,
        metadata: Any,
        *,
        flags: int = 0,
        user_address: Any = None,
    ) -> bool:
        """A client's put: convert, check, write through the iCS, and wait for its readback.

        Raises (so caproto answers ECA_PUTFAIL with the message) when refused or failed.
        The PV then shows what the iCS reports; nothing is written to it here.
        """
        if data_type in (ChannelType.PUT_ACKS, ChannelType.PUT_ACKT):
            raise PermissionError("alarm acknowledgement is not supported")
        who = f"{username}@{hostname}"
        try:
            value = self.from_client(self.put_value(data, native_type(data_type)))
        except ValueError as exc:
            refused = TypeRefused(f"{self.entry.pv}: not a {self.entry.type.value}: {exc}")
            log.warning("write %s by %s via CA: refused: %s", subject(self.entry), who, refused)
            raise refused from None
        await self.writer.write(self.entry.key, value, who=who, via="CA")
        return True

    # --- record fields -----------------------------------------------------------------

    def get_field(self, name: str) -> ChannelData:
        """The channel of a record field such as `EGU`; KeyError for one the PV lacks."""
        field = self._fields.get(name)
        if field is None:
            field = self._fields[name] = self._make_field(name)
        return field

    def _make_field(self, name: str) -> ChannelData:
        entry = self.entry
        numbers = {"HOPR": entry.high, "LOPR": entry.low}
        if entry.access.writable:
            numbers |= {"DRVH": entry.drive_high, "DRVL": entry.drive_low}
        texts = {"EGU": entry.unit, "DESC": entry.description, "RTYP": record_type(entry)}
        if name in numbers:
            return ReadOnlyDouble(value=numbers[name] or 0.0)
        if name == "PREC":
            return ReadOnlyInteger(value=entry.precision or 0)
        if name in texts:
            return ReadOnlyString(value=texts[name], string_encoding=ENCODING)
        if name in ("STAT", "SEVR"):
            return AlarmField(self, name)
        raise KeyError(name)


_SEVERITY = {Severity.MINOR: AlarmSeverity.MINOR_ALARM, Severity.MAJOR: AlarmSeverity.MAJOR_ALARM}


def _wire(value: Value) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None


class _ReadOnly:
    def check_access(self, hostname: str, username: str) -> AccessRights:
        return AccessRights.READ


class ReadOnlyDouble(_ReadOnly, ChannelDouble):
    """A numeric record field."""


class ReadOnlyInteger(_ReadOnly, ChannelInteger):
    """An integer record field."""


class ReadOnlyString(_ReadOnly, ChannelString):
    """A text record field."""


class ReadOnlyEnum(_ReadOnly, ChannelEnum):
    """A state the bridge reports."""


class AlarmField(_ReadOnly, ChannelEnum):
    """`.STAT` or `.SEVR`: the PV's current alarm, read when asked."""

    def __init__(self, pv: ItemPV, name: str) -> None:
        if name == "STAT":
            names = [member.name for member in AlarmStatus]
        else:
            names = ["NO_ALARM", "MINOR", "MAJOR", "INVALID"]
        super().__init__(value=names[0], enum_strings=names[:MAX_STATES])
        self._pv = pv
        self._name = name

    async def _read(self, data_type: ChannelType) -> Any:
        alarm = self._pv.alarm
        index = int(alarm.status if self._name == "STAT" else alarm.severity)
        self._data["value"] = self.enum_strings[min(index, len(self.enum_strings) - 1)]
        return await super()._read(data_type)


class DoublePV(ItemPV, ChannelDouble):
    """A float item: DOUBLE with units, precision, display, control and alarm limits."""

    def __init__(self, entry: ItemEntry, writer: Writer) -> None:
        super().__init__(
            value=0.0,
            alarm=ALARMS[LINK_DOWN],
            units=entry.unit,
            precision=entry.precision or 0,
            upper_disp_limit=entry.high or 0.0,
            lower_disp_limit=entry.low or 0.0,
            upper_ctrl_limit=entry.drive_high if entry.drive_high is not None else 0.0,
            lower_ctrl_limit=entry.drive_low if entry.drive_low is not None else 0.0,
            upper_alarm_limit=entry.alarm_high if entry.alarm_high is not None else 0.0,
            lower_alarm_limit=entry.alarm_low if entry.alarm_low is not None else 0.0,
            upper_warning_limit=entry.warn_high if entry.warn_high is not None else 0.0,
            lower_warning_limit=entry.warn_low if entry.warn_low is not None else 0.0,
            reported_record_type=record_type(entry),
            string_encoding=ENCODING,
        )
        self._bridge_init(entry, writer)

    def from_client(self, value: float | int | str) -> Value:
        return parse_number(value) if isinstance(value, str) else float(value)


class IntegerPV(ItemPV, ChannelInteger):
    """An int item without states: LONG with its limits."""

    def __init__(self, entry: ItemEntry, writer: Writer) -> None:
        super().__init__(
            value=0,
            alarm=ALARMS[LINK_DOWN],
            units=entry.unit,
            upper_disp_limit=int(entry.high or 0),
            lower_disp_limit=int(entry.low or 0),
            upper_ctrl_limit=int(entry.drive_high or 0),
            lower_ctrl_limit=int(entry.drive_low or 0),
            reported_record_type=record_type(entry),
            string_encoding=ENCODING,
        )
        self._bridge_init(entry, writer)

    def from_client(self, value: float | int | str) -> Value:
        return integral(parse_number(value) if isinstance(value, str) else value)


class EnumPV(ItemPV, ChannelEnum):
    """A bool, or an int or text item with states: ENUM with the state strings."""

    def __init__(self, entry: ItemEntry, writer: Writer) -> None:
        codes = list(entry.states) or ["0", "1"]
        if entry.type is ValueType.INT:
            codes.sort(key=int)
        elif entry.type is ValueType.BOOL:
            codes = ["0", "1"]
        labels = [entry.states.get(code, code)[:25] for code in codes]
        super().__init__(
            value=labels[0],
            enum_strings=labels,
            alarm=ALARMS[LINK_DOWN],
            reported_record_type=record_type(entry),
            string_encoding=ENCODING,
        )
        self._codes = codes
        self._index = {label: index for index, label in enumerate(labels)}
        self._labels = dict(zip(codes, labels, strict=True))
        self._by_label = dict(zip(labels, codes, strict=True))
        self._bridge_init(entry, writer)

    def wire_value(self) -> Any:
        return self._index[self._data["value"]]

    def _index_of(self, value: float | int | str) -> int:
        """The state a client names by its index, as a number or as text."""
        if isinstance(value, str):
            try:
                value = parse_number(value)
            except ValueError:
                raise ValueError(f"{value!r:.40} is none of {list(self._by_label)}") from None
        index = integral(value)
        if not 0 <= index < len(self._codes):
            raise ValueError(f"{index} is no state index (0..{len(self._codes) - 1})")
        return index

    def to_ca(self, value: Value) -> Any:
        label = self._labels.get(_wire(value))  # type: ignore[arg-type]
        if label is None:
            raise ValueError(f"{value!r} is none of the states {self._codes}")
        return label

    def from_client(self, value: float | int | str) -> Value:
        code = self._by_label.get(value) if isinstance(value, str) else None
        if code is None:
            code = self._codes[self._index_of(value)]
        match self.entry.type:
            case ValueType.BOOL:
                return code == "1"
            case ValueType.INT:
                return int(code)
        return code


class StringPV(ItemPV, ChannelString):
    """A text item of up to 39 characters: STRING."""

    def __init__(self, entry: ItemEntry, writer: Writer) -> None:
        super().__init__(
            value="",
            alarm=ALARMS[LINK_DOWN],
            reported_record_type=record_type(entry),
            string_encoding=ENCODING,
        )
        self._bridge_init(entry, writer)

    def to_ca(self, value: Value) -> Any:
        return str(value)[:MAX_STRING]

    def wire_value(self) -> Any:
        return self._data["value"].encode(ENCODING)[:MAX_STRING]

    def from_client(self, value: float | int | str) -> Value:
        return text(value)


class LongStringPV(ItemPV, ChannelChar):
    """A longer text item: a char array, read whole with `caget -S`."""

    def __init__(self, entry: ItemEntry, writer: Writer) -> None:
        super().__init__(
            value="",
            max_length=entry.length + 1,
            alarm=ALARMS[LINK_DOWN],
            reported_record_type=record_type(entry),
            string_encoding=ENCODING,
        )
        self._bridge_init(entry, writer)

    def to_ca(self, value: Value) -> Any:
        return str(value)[: self.max_length - 1]

    def put_value(self, data: Any, native: ChannelType) -> float | int | str:
        if native is ChannelType.CHAR:  # the text itself, up to its terminating zero
            return bytes(data).split(b"\0", 1)[0].decode(ENCODING)
        return super().put_value(data, native)

    def from_client(self, value: float | int | str) -> Value:
        return text(value)


def text(value: float | int | str) -> str:
    """A client's text for a text item: numbers and empty text are refused."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    if not value:
        raise ValueError("empty text")
    return value


def make_pv(entry: ItemEntry, writer: Writer) -> ItemPV:
    """The PV class that fits the item, built."""
    if entry.type is ValueType.BOOL or (entry.states and len(entry.states) <= MAX_STATES):
        return EnumPV(entry, writer)
    if entry.type is ValueType.FLOAT:
        return DoublePV(entry, writer)
    if entry.type is ValueType.INT:
        return IntegerPV(entry, writer)
    if entry.length > MAX_STRING:
        return LongStringPV(entry, writer)
    return StringPV(entry, writer)
