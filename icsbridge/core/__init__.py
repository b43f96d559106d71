"""What the EPICS and OPC UA faces share: the mapped items and the one write path."""
