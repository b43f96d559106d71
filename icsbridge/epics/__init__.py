"""The EPICS face of the bridge: Channel Access PVs and EPICS database files."""
