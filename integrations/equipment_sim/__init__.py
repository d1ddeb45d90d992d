"""The equipment simulator: an OPC UA server (asyncua) with a bioreactor, BR-101, and a
balance, BAL-01, for the demo and for testing the OPC UA connector against a real server.

``batchline equipment-sim --host H --port P`` runs it from a shell; tests and the demo use
:class:`EquipmentSimulator` (start/stop from synchronous code). The address space is a
contract with the connector: see :mod:`.address_space` and docs/equipment-simulator.md.

Modules: ``culture`` (the process physics), ``phases`` (ISA-88 states, parameters, phase
report), ``alarms`` (when alarms raise and clear), ``address_space`` (the nodes),
``equipment`` (method handlers, the periodic update), ``security`` (certificates, trust
list), ``simulator`` (the server thread).
"""

from __future__ import annotations

from .address_space import ALARM_EVENT_TYPE, APPLICATION_URI, BALANCE, BIOREACTOR, NAMESPACE_URI
from .security import MODES, client_certificate
from .simulator import EquipmentSimulator, SimulatorError

__all__ = [
    "ALARM_EVENT_TYPE",
    "APPLICATION_URI",
    "BALANCE",
    "BIOREACTOR",
    "MODES",
    "NAMESPACE_URI",
    "EquipmentSimulator",
    "SimulatorError",
    "client_certificate",
]
