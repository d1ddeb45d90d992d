"""The simulator's OPC UA address space: the contract clients program against.

Namespace ``urn:batchline:equipment-sim`` (clients look its index up by URI). Every node
id is a string id ``<Equipment>.<Name>`` in that namespace, so a connector configured
with ``BR-101.Temperature`` finds the node without browsing. See
docs/equipment-simulator.md for the table of nodes, types and units.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asyncua import Node, Server, ua

NAMESPACE_URI = "urn:batchline:equipment-sim"
APPLICATION_URI = "urn:batchline:equipment-sim:server"
BIOREACTOR, BALANCE = "BR-101", "BAL-01"
ALARM_EVENT_TYPE = "EquipmentAlarmEventType"
UNECE_UNITS = "http://www.opcfoundation.org/UA/units/un/cefact"

# name -> (unit shown, UNECE common code or "" when it has none)
PROCESS_VARIABLES = {
    "Temperature": ("°C", "CEL"),
    "pH": ("pH", ""),
    "DO": ("%", "P1"),
    "Agitation": ("rpm", "RPM"),
    "Volume": ("L", "LTR"),
    "VCD": ("1e6 cells/mL", ""),
}
# writable setpoint node -> (culture setpoint field, process variable it steers)
SETPOINTS = {
    "TemperatureSetpoint": ("temperature", "Temperature"),
    "pHSetpoint": ("ph", "pH"),
    "DOSetpoint": ("do", "DO"),
    "AgitationSetpoint": ("agitation", "Agitation"),
}
STRING_VARIABLES = ("State", "Phase", "RunId", "PhaseReport", "LastError")

Handler = Callable[..., Awaitable[Any]]


def string_arg(name: str, description: str) -> ua.Argument:
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(ua.ObjectIds.String),
        ValueRank=-1,
        Description=ua.LocalizedText(description),
    )


def double_arg(name: str, description: str) -> ua.Argument:
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(ua.ObjectIds.Double),
        ValueRank=-1,
        Description=ua.LocalizedText(description),
    )


# method name -> (inputs, outputs, what it does)
BIOREACTOR_METHODS = {
    "StartPhase": (
        [
            string_arg("phase", "phase name, e.g. Production"),
            string_arg("parameters", 'JSON object, e.g. {"duration_h": 2, "temperature": 36.5}'),
        ],
        [string_arg("run_id", "the id of the phase run")],
        "Start a phase (from Idle, Complete or Aborted)",
    ),
    "Hold": ([], [], "Hold the running phase"),
    "Restart": ([], [], "Restart the held phase"),
    "Stop": ([], [], "End the phase early as Complete"),
    "Abort": ([], [], "Abort the phase"),
    "Reset": ([], [], "Back to Idle"),
    "InjectFault": (
        [string_arg("kind", "temperature_excursion, do_drop, ph_drift or clear")],
        [],
        "Disturb the process so an alarm follows (tests, demos, training)",
    ),
}
BALANCE_METHODS = {
    "Tare": ([], [], "Zero the balance with the present load"),
    "Weigh": ([], [double_arg("net_kg", "stable net weight in kg")], "Wait for a stable reading and return it"),
}


def unece_id(code: str) -> int:
    """UnitId of a UNECE common code, as OPC UA Part 8 computes it."""
    value = 0
    for char in code:
        value = (value << 8) | ord(char)
    return value


def nid(idx: int, equipment: str, name: str | None = None) -> ua.NodeId:
    return ua.NodeId(f"{equipment}.{name}" if name else equipment, idx)


@dataclass
class AddressSpace:
    """The nodes the simulator writes to, by ``<Equipment>.<Name>``."""

    idx: int
    variables: dict[str, Node] = field(default_factory=dict)
    bioreactor: Node | None = None
    balance: Node | None = None
    alarm_type: Node | None = None

    def node(self, key: str) -> Node:
        return self.variables[key]


async def _variable(space: AddressSpace, parent: Node, equipment: str, name: str, value: Any, vtype, unit=None):
    node = await parent.add_variable(
        nid(space.idx, equipment, name), ua.QualifiedName(name, space.idx), ua.Variant(value, vtype)
    )
    if unit is not None:
        shown, code = unit
        await node.add_property(
            ua.NodeId(f"{equipment}.{name}.EngineeringUnits", space.idx),
            ua.QualifiedName("EngineeringUnits", 0),
            ua.EUInformation(
                NamespaceUri=UNECE_UNITS,
                UnitId=unece_id(code) if code else -1,
                DisplayName=ua.LocalizedText(shown),
                Description=ua.LocalizedText(shown),
            ),
        )
    space.variables[f"{equipment}.{name}"] = node
    return node


async def _methods(space: AddressSpace, parent: Node, equipment: str, table: dict, handlers: dict[str, Handler]):
    for name, (inputs, outputs, _doc) in table.items():
        await parent.add_method(
            nid(space.idx, equipment, name), ua.QualifiedName(name, space.idx), handlers[name], inputs, outputs
        )


async def build(server: Server, handlers: dict[str, Handler], initial: dict[str, Any]) -> AddressSpace:
    """Create BR-101, BAL-01 and the alarm event type; ``handlers`` maps method names
    (``StartPhase``, ``Tare``...) to coroutines; ``initial`` gives starting values by key."""
    idx = await server.register_namespace(NAMESPACE_URI)
    space = AddressSpace(idx)
    objects = server.nodes.objects
    D, S, B = ua.VariantType.Double, ua.VariantType.String, ua.VariantType.Boolean

    br = await objects.add_object(nid(idx, BIOREACTOR), ua.QualifiedName(BIOREACTOR, idx))
    space.bioreactor = br
    for name, unit in PROCESS_VARIABLES.items():
        await _variable(space, br, BIOREACTOR, name, float(initial[f"{BIOREACTOR}.{name}"]), D, unit)
    for name, (_field, steered) in SETPOINTS.items():
        node = await _variable(
            space, br, BIOREACTOR, name, float(initial[f"{BIOREACTOR}.{name}"]), D, PROCESS_VARIABLES[steered]
        )
        await node.set_writable()
    for name in STRING_VARIABLES:
        await _variable(space, br, BIOREACTOR, name, str(initial.get(f"{BIOREACTOR}.{name}", "")), S)
    await _methods(space, br, BIOREACTOR, BIOREACTOR_METHODS, handlers)

    bal = await objects.add_object(nid(idx, BALANCE), ua.QualifiedName(BALANCE, idx))
    space.balance = bal
    await _variable(space, bal, BALANCE, "Weight", 0.0, D, ("kg", "KGM"))
    await _variable(space, bal, BALANCE, "Stable", True, B)
    load = await _variable(space, bal, BALANCE, "Load", 0.0, D, ("kg", "KGM"))
    await load.set_writable()
    await _methods(space, bal, BALANCE, BALANCE_METHODS, handlers)

    space.alarm_type = await _alarm_event_type(server, idx)
    return space


async def _alarm_event_type(server: Server, idx: int) -> Node:
    """``EquipmentAlarmEventType``: BaseEventType (Severity, Message, SourceName, Time)
    plus AlarmKind, Active, Value and Limit, so a subscriber can tell raise from clear."""
    base = server.get_node(ua.NodeId(ua.ObjectIds.BaseEventType))
    etype = await base.add_object_type(ua.NodeId(ALARM_EVENT_TYPE, idx), ua.QualifiedName(ALARM_EVENT_TYPE, idx))
    for name, vtype in (
        ("AlarmKind", ua.VariantType.String),
        ("Active", ua.VariantType.Boolean),
        ("Value", ua.VariantType.Double),
        ("Limit", ua.VariantType.Double),
    ):
        prop = await etype.add_property(
            ua.NodeId(f"{ALARM_EVENT_TYPE}.{name}", idx),
            ua.QualifiedName(name, idx),
            ua.get_default_value(vtype),
            varianttype=vtype,
        )
        await prop.set_modelling_rule(True)
    return etype
