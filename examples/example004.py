"""Example 004 of iseg's icsClientPython3 manual, ported to icsbridge.

Print the firmware, serial number and temperature of every module and the main items of
every channel. The body is a reconstruction of the manual's example (its text is not
public); only the import and the connection lines differ from a script for iseg's module.

    python examples/example004.py ws://HOST:8080 [USER PASSWORD]
"""

import sys
import time

from icsbridge.compat import icsClientPython3  # was: import icsClientPython3

address = sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8080"
login, password = sys.argv[2:4] if len(sys.argv) > 3 else ("admin", "password")
connection = icsClientPython3.connect("example004", address, login, password)

time.sleep(1)  # time to fill the cache from iCSservice

for module in connection.modules:
    print("module", module)
    print("  firmware", module.getStatusFirmwareName(), module.getStatusFirmwareRelease())
    print("  serial number", int(module.getStatusSerialNumber()))
    print("  temperature", module.getStatusTemperature())
    for channel in module.channels:
        print("  channel", channel)
        print("    Status.voltageMeasure", channel.getStatusVoltageMeasure())
        print("    Status.currentMeasure", channel.getStatusCurrentMeasure())
        print("    Control.voltageSet", channel.getControlVoltageSet())
        print("    Control.currentSet", channel.getControlCurrentSet())
        print("    Status.on", channel.getStatusOn())
        print("    Status.runningState", channel.getStatusRunningState())
        print("    Status.currentTrip", channel.getStatusTrip())
        print("    Status.emergency", channel.getStatusEmergency())

connection.disconnect()
