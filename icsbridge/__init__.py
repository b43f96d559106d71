"""icsbridge: iseg iCS high-voltage systems as EPICS Channel Access PVs and OPC UA nodes."""

__version__ = "0.1.0"
