"""Crates, modules and channels: iCS objects with a getX()/setX(value) method per item."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, overload

from icsbridge.catalog import catalog
from icsbridge.compat.items import item_methods
from icsbridge.compat.session import Session
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey, ItemPath, Level

if TYPE_CHECKING:
    from icsbridge.compat.connection import connection as Connection


class IcsObject:
    """An object of the iCS tree; a subclass names its level and gets that level's items."""

    level: ClassVar[Level]

    def __init_subclass__(cls, level: Level | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if level is None:
            return
        cls.level = level
        for name, function in item_methods(s for s in catalog() if s.level is level).items():
            if hasattr(cls, name):
                raise TypeError(f"{cls.__name__}.{name} would hide another attribute")
            setattr(cls, name, function)

    def __init__(self, session: Session, path: ItemPath) -> None:
        self._session = session
        self._path = path

    def __repr__(self) -> str:
        return str(self._path)

    def _read(self, item: str) -> Value | None:
        return self._session.value(ItemKey(*self._path, item))

    def _write(self, item: str, value: Value) -> Value:
        return self._session.write(ItemKey(*self._path, item), value)


class PathPart:
    """A read-only attribute of a crate, module or channel: one number of its path."""

    def __init__(self, part: int, doc: str) -> None:
        self.part = part
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, cls: type) -> PathPart: ...

    @overload
    def __get__(self, obj: IcsObject, cls: type) -> int: ...

    def __get__(self, obj: IcsObject | None, cls: type) -> PathPart | int:
        return self if obj is None else int(obj._path[self.part] or 0)

    def __set__(self, obj: IcsObject, value: object) -> None:
        raise AttributeError("a path part is read-only")


class _Hardware(IcsObject):
    """A crate, module or channel of a connection, on a line at an address."""

    def __init__(self, owner: Connection, session: Session, path: ItemPath) -> None:
        super().__init__(session, path)
        self._owner = owner

    @property
    def connection(self) -> Connection:
        """The connection this object belongs to."""
        return self._owner

    line = PathPart(0, "The line (CAN line or interface) number.")
    address = PathPart(1, "The address on the line: 1000 for the crate, else the module's slot.")


class crate(_Hardware, level=Level.CRATE):
    """A crate controller, printed `line.1000`; help() lists its items."""

    def __init__(self, owner: Connection, session: Session, line: int, address: int) -> None:
        super().__init__(owner, session, ItemPath(line, address))


class module(_Hardware, level=Level.MODULE):
    """A module, printed `line.address`; help() lists its items."""

    def __init__(
        self, owner: Connection, session: Session, line: int, address: int, channels: int
    ) -> None:
        super().__init__(owner, session, ItemPath(line, address))
        self._channels = [channel(owner, session, self, index) for index in range(channels)]

    @property
    def channels(self) -> list[channel]:
        """The module's channels, by index."""
        return list(self._channels)


Module: TypeAlias = "module"


class channel(_Hardware, level=Level.CHANNEL):
    """A channel, printed `line.address.index`; help() lists its items."""

    def __init__(self, owner: Connection, session: Session, parent: Module, index: int) -> None:
        super().__init__(owner, session, ItemPath(parent.line, parent.address, index))
        self._module = parent

    @property
    def module(self) -> Module:
        """The module the channel belongs to."""
        return self._module

    index = PathPart(2, "The channel number within its module.")
