"""Engineering units as OPC UA EUInformation, by their UNECE Recommendation 20 codes."""

from __future__ import annotations

from asyncua import ua

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

UNECE_CODES = {
    "V": "VLT",
    "kV": "KVT",
    "A": "AMP",
    "mA": "4K",
    "µA": "B84",
    "nA": "C39",
    "°C": "CEL",
    "ms": "C26",
    "s": "SEC",
    "%": "P1",
    "Ω": "OHM",
    "V/s": "H46",
}
"""UNECE common codes of the units the catalogue uses; others get UnitId -1."""


def unit_id(code: str) -> int:
    """The OPC UA UnitId of a UNECE code: its characters as bytes of one integer."""
    number = 0
    for character in code:
        number = (number << 8) | ord(character)
    return number


def eu_information(unit: str) -> ua.EUInformation:
    """The EngineeringUnits property value of a unit string."""
    code = UNECE_CODES.get(unit)
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unit_id(code) if code else -1,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )
