"""The master-data pages: materials, lots and equipment for the people who maintain them
(everyone signed in reads; the forms show only to those whose role may use them: the same
permission matrix and engine rules as the API and ``batchline materials|lots|equipment``).
A lot's page links its genealogy (``/lots/<lot>/genealogy``); an equipment's page shows its
logbook. Times are shown in the reader's local time (``ui/local_time.js``)."""

from __future__ import annotations

import json
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from engine import equipment_logbook, permissions
from engine.errors import BatchlineError
from engine.master_data import UNITS, history
from engine.master_data import equipment as equipment_md
from engine.master_data import lots as lots_md
from engine.master_data import materials as materials_md

from ..runtime import runtime
from .pages import bp, require, sentence

#: statuses in the users' words
LOT_WORDS = {"quarantine": "Quarantine", "released": "Released", "rejected": "Rejected", "expired": "Expired"}
EQUIPMENT_WORDS = {
    "clean": "Clean",
    "dirty": "Dirty (to be cleaned)",
    "in_use": "In use",
    "maintenance": "In maintenance",
    "out_of_service": "Out of service",
}


def _may(action: str) -> bool:
    return permissions.allowed(g.person.roles, action)


def _form(*keys: str) -> dict[str, str]:
    return {k: (request.form.get(k) or "").strip() for k in keys}


def _number(text: str) -> Any:
    try:
        return float(text) if text else None
    except ValueError:
        return text  # the engine says what is wrong with it


def _trail(object_type: str, object_id: str) -> list[dict[str, Any]]:
    """The audit history in users' words: what was done, the values before and after."""
    with runtime().transaction() as s:
        rows = history(s, object_type, object_id)
    for row in rows:
        kind = row["action"].split(".")[-1]
        row["what"] = ACTION_WORDS.get(kind, kind.replace("_", " "))
        if kind == "update" and row["field"]:
            row["what"] += " " + row["field"].replace("_", " ")
        row["old"], row["new"] = _plain(row["old"]), "" if kind in ("create", "logbook") else _plain(row["new"])
    return rows


ACTION_WORDS = {
    "create": "Registered",
    "update": "Changed",
    "status": "Status",
    "calibrated": "Calibrated until",
    "logbook": "Logbook entry",
}


def _plain(text: str | None) -> str:
    """An audited value as a person reads it (statuses in words, no JSON)."""
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and "status" in value:
        words = EQUIPMENT_WORDS.get(value["status"]) or LOT_WORDS.get(value["status"]) or str(value["status"])
        return words + (f" (batch {value['in_use_by']})" if value.get("in_use_by") else "")
    if isinstance(value, str):
        return LOT_WORDS.get(value) or EQUIPMENT_WORDS.get(value) or value
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items() if v not in (None, ""))[:200]
    return str(value)


def _words() -> dict[str, Any]:
    return {"lot_words": LOT_WORDS, "equipment_words": EQUIPMENT_WORDS, "units": UNITS}


# --- materials --------------------------------------------------------------------------


def _materials_page(error: str | None = None, status: int = 200, form: dict | None = None):
    return render_template(
        "ui/materials.html",
        materials=materials_md.list_materials(runtime()),
        kinds=materials_md.KINDS,
        may_manage=_may("materials.manage"),
        error=error,
        form=form or {},
        **_words(),
    ), status


@bp.route("/materials/")
def material_list():
    require("materials.read")
    return _materials_page()


@bp.route("/materials/", methods=["POST"])
def material_save():
    """Add a material, or change one (``material_id`` of an existing one and a reason)."""
    require("materials.manage")
    form = _form("material_id", "name", "unit", "kind", "description", "reason", "mode", "active")
    try:
        if form["mode"] == "update":
            values: dict[str, Any] = {k: form[k] for k in ("name", "unit", "kind", "description") if form[k]}
            values["active"] = form["active"] == "yes"
            values["reason"] = form["reason"] or None
            materials_md.update(runtime(), form["material_id"], values, by=g.person.username)
            flash(f"Material {form['material_id']} saved.", "success")
        else:
            values = {k: form[k] for k in ("material_id", "name", "unit", "kind", "description")}
            materials_md.create(runtime(), values, by=g.person.username)
            flash(f"Material {form['material_id']} added.", "success")
    except BatchlineError as exc:
        return _materials_page(sentence(exc.message), int(getattr(exc, "status", 422)), form)
    return redirect(url_for("ui.material_list"))


# --- lots -------------------------------------------------------------------------------


@bp.route("/lots/", methods=["GET", "POST"])
def lot_list():
    require("materials.read")
    error, status, form = None, 200, {}
    if request.method == "POST":
        require("lots.manage")
        form = _form("lot_id", "material", "quantity", "unit", "expires_at")
        values = {
            "lot_id": form["lot_id"],
            "material": form["material"],
            "quantity": _number(form["quantity"]),
            "unit": form["unit"] or None,
            "expires_at": form["expires_at"] or None,
        }
        try:
            lots_md.create(runtime(), values, by=g.person.username)
            flash(f"Lot {form['lot_id']} received; it is in quarantine until QA releases it.", "success")
            return redirect(url_for("ui.lot_page", lot_id=form["lot_id"]))
        except BatchlineError as exc:
            error, status = sentence(exc.message), int(getattr(exc, "status", 422))
    wanted_status = request.args.get("status") or None
    wanted_material = (request.args.get("material") or "").strip()[:100] or None
    if wanted_status not in (None, *lots_md.STATUSES):
        wanted_status = None
    return render_template(
        "ui/lots.html",
        lots=lots_md.list_lots(runtime(), status=wanted_status, material=wanted_material),
        materials=materials_md.list_materials(runtime(), active=True),
        wanted_status=wanted_status,
        wanted_material=wanted_material or "",
        statuses=lots_md.STATUSES,
        may_manage=_may("lots.manage"),
        error=error,
        form=form,
        **_words(),
    ), status


def _lot_page(lot_id: str, error: str | None = None, status: int = 200):
    lot = lots_md.get(runtime(), lot_id)
    return render_template(
        "ui/lot.html",
        lot=lot,
        choices=lots_md.TRANSITIONS.get(lot["status"], ()),
        trail=_trail("lot", lot["lot_id"]),
        may_release=_may("lots.release"),
        may_manage=_may("lots.manage"),
        error=error,
        **_words(),
    ), status


@bp.route("/lots/<lot_id>")
def lot_page(lot_id: str):
    require("materials.read")
    return _lot_page(lot_id)


@bp.route("/lots/<lot_id>", methods=["POST"])
def lot_change(lot_id: str):
    """QA's status decision, or a change of quantity / expiry (with a reason)."""
    form = _form("action", "status", "reason", "quantity", "expires_at", "version")
    version = int(form["version"]) if form["version"].isdigit() else None
    try:
        if form["action"] == "status":
            require("lots.release")
            lots_md.change_status(
                runtime(), lot_id, form["status"], by=g.person, reason=form["reason"], version=version
            )
            flash(f"Lot {lot_id} is {LOT_WORDS.get(form['status'], form['status']).lower()}.", "success")
        else:
            require("lots.manage")
            values: dict[str, Any] = {"reason": form["reason"] or None, "version": version}
            if form["quantity"]:
                values["quantity"] = _number(form["quantity"])
            if form["expires_at"]:
                values["expires_at"] = form["expires_at"]
            lots_md.update(runtime(), lot_id, values, by=g.person.username)
            flash(f"Lot {lot_id} saved.", "success")
    except BatchlineError as exc:
        if exc.status == 404:
            raise
        return _lot_page(lot_id, sentence(exc.message), int(getattr(exc, "status", 422)))
    return redirect(url_for("ui.lot_page", lot_id=lot_id))


# --- equipment --------------------------------------------------------------------------


@bp.route("/equipment/", methods=["GET", "POST"])
def equipment_list():
    require("materials.read")
    error, status, form = None, 200, {}
    if request.method == "POST":
        require("equipment.manage")
        form = _form("equipment_id", "equipment_class", "name", "location")
        try:
            equipment_md.create(runtime(), {k: v for k, v in form.items() if v}, by=g.person.username)
            flash(f"{form['equipment_id']} registered; it is dirty until cleaned.", "success")
            return redirect(url_for("ui.equipment_page", equipment_id=form["equipment_id"]))
        except BatchlineError as exc:
            error, status = sentence(exc.message), int(getattr(exc, "status", 422))
    wanted = request.args.get("status") or None
    if wanted not in (None, *equipment_md.STATUSES):
        wanted = None
    return render_template(
        "ui/equipment_list.html",
        equipment=equipment_md.list_equipment(runtime(), status=wanted),
        wanted_status=wanted,
        statuses=equipment_md.STATUSES,
        may_manage=_may("equipment.manage"),
        error=error,
        form=form,
        **_words(),
    ), status


def _equipment_page(equipment_id: str, error: str | None = None, status: int = 200):
    eq = equipment_md.get(runtime(), equipment_id)
    return render_template(
        "ui/equipment.html",
        eq=eq,
        choices=[s for s, allowed in equipment_md.BY_HAND.items() if eq["status"] in allowed],
        logbook=equipment_logbook.logbook(runtime(), eq["equipment_id"])[:50],
        trail=_trail("equipment", eq["equipment_id"]),
        may_maintain=_may("equipment.maintain"),
        may_manage=_may("equipment.manage"),
        error=error,
        **_words(),
    ), status


@bp.route("/equipment/<equipment_id>")
def equipment_page(equipment_id: str):
    require("materials.read")
    return _equipment_page(equipment_id)


@bp.route("/equipment/<equipment_id>", methods=["POST"])
def equipment_change(equipment_id: str):
    """Maintenance's status change, or a change of what the register says (with a reason)."""
    form = _form("action", "status", "reason", "name", "location", "calibration_interval_days", "version")
    version = int(form["version"]) if form["version"].isdigit() else None
    try:
        if form["action"] == "status":
            require("equipment.maintain")
            equipment_md.change_status(
                runtime(), equipment_id, form["status"], by=g.person, reason=form["reason"], version=version
            )
            flash(f"{equipment_id} is {EQUIPMENT_WORDS.get(form['status'], form['status']).lower()}.", "success")
        else:
            require("equipment.manage")
            values: dict[str, Any] = {"reason": form["reason"] or None, "version": version}
            for key in ("name", "location"):
                if form[key]:
                    values[key] = form[key]
            if form["calibration_interval_days"]:
                days = form["calibration_interval_days"]
                values["calibration_interval_days"] = int(days) if days.isdigit() else days
            equipment_md.update(runtime(), equipment_id, values, by=g.person.username)
            flash(f"{equipment_id} saved.", "success")
    except BatchlineError as exc:
        if exc.status == 404:
            raise
        return _equipment_page(equipment_id, sentence(exc.message), int(getattr(exc, "status", 422)))
    return redirect(url_for("ui.equipment_page", equipment_id=equipment_id))
