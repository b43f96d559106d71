"""The generated mapping: every iCS item instance with its PV name and OPC UA NodeId."""
