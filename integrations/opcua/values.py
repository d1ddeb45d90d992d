"""Values between a recipe and OPC UA: a BPMN value as the node's data type (a
setpoint written as 37 is a Double, as the server wants), OPC UA values and timestamps
as JSON for the batch record, method argument types, a certificate's application URI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from asyncua import Node, ua
from asyncua.ua.uaerrors import UaStatusCodeError

from engine.connectors import ConnectorError


def iso(stamp: datetime | None) -> str | None:
    if stamp is None:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).isoformat()


async def input_types(node: Node) -> list[ua.VariantType]:
    try:
        prop = await node.get_child("0:InputArguments")
    except UaStatusCodeError:
        return []
    out = []
    for arg in await prop.read_value() or []:
        ident = arg.DataType.Identifier if arg.DataType.NamespaceIndex == 0 else ua.ObjectIds.String
        out.append(ua.VariantType(ident) if ident in ua.VariantType._value2member_map_ else ua.VariantType.String)
    return out


def cast(where: str, value: Any, vtype: ua.VariantType) -> Any:
    """A BPMN value as the node's type: numbers for Double/Float/Int, text for String."""
    try:
        if vtype in (ua.VariantType.Double, ua.VariantType.Float):
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            return float(value)
        if vtype.name.startswith(("Int", "UInt", "Byte", "SByte")):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError("not a whole number")
            return int(float(value))
        if vtype == ua.VariantType.Boolean:
            if not isinstance(value, bool):
                raise ValueError("not true or false")
            return value
        if vtype == ua.VariantType.String:
            return value if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"{where}: {value!r} is not a {vtype.name}: {exc}", retry=False) from None
    return value


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def certificate_uri(path: str) -> str | None:
    from cryptography import x509

    data = open(path, "rb").read()  # noqa: SIM115 - small file
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.lstrip().startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None
