"""The OPC UA face of the bridge: an asyncua server of the mapped items."""
