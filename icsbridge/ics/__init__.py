"""Talking to an iCS: the sans-I/O protocol core, the asyncio client and the simulator."""
