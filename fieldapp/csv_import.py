"""Parsing a CSV batch of warnings: every row checked before any is stored."""

import csv
import io
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import gettext as _
from pydantic import ValidationError

from fieldapp import warning_intake
from fieldapp.api.errors import field_errors
from fieldapp.api.schemas import WarningIn
from fieldapp.extensions import db
from fieldapp.models import User, Warning

COLUMNS = (
    "source_ref",
    "person_name",
    "person_phone",
    "fraud_type",
    "risk_level",
    "amount_at_risk",
    "lat",
    "lon",
    "accuracy_m",
    "station_code",
    "address",
    "suspect_account",
    "issued_at",
    "note",
)
REQUIRED_COLUMNS = ("person_name", "person_phone", "fraud_type")
MAX_ROWS = 2000


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    created: list[Warning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, which is what Excel saves in China."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def manual_ref() -> str:
    return "manual-" + secrets.token_hex(6)


def row_to_input(row: dict[str, str]) -> dict:
    """A CSV or form row as the dict WarningIn validates (empty cells are absent)."""
    data = {k: v.strip() for k, v in row.items() if k in COLUMNS and v and v.strip()}
    lat, lon, acc = data.pop("lat", None), data.pop("lon", None), data.pop("accuracy_m", None)
    if lat is not None or lon is not None:
        data["location"] = {"lat": lat, "lon": lon}
        if acc is not None:
            data["location"]["accuracy_m"] = acc
    data.setdefault("source_ref", manual_ref())
    return data


def _flatten(errors: dict[str, str]) -> dict[str, str]:
    # location.lat in the schema is the lat column in the CSV and the form.
    return {
        k.removeprefix("location.") if k.startswith("location.") else k: v
        for k, v in errors.items()
    }


def validate_row(row: dict[str, str]) -> tuple[WarningIn | None, dict[str, str]]:
    """Validate one row; returns (input, {}) or (None, errors)."""
    try:
        return WarningIn.model_validate(row_to_input(row)), {}
    except ValidationError as exc:
        return None, _flatten(field_errors(exc))


def import_csv(raw: bytes, chief: User) -> ImportReport:
    """Check every row; store and dispatch all of them, or none when any row is wrong."""
    report = ImportReport()
    try:
        text = decode(raw)
    except UnicodeDecodeError:
        report.errors.append((0, {"file": _("The file is neither UTF-8 nor GB18030 text.")}))
        return report
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        report.errors.append((1, {"file": _("Missing columns: %(cols)s", cols=", ".join(missing))}))
        return report
    reader.fieldnames = header
    inputs: list[tuple[int, WarningIn]] = []
    seen_refs: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append((line, {"file": _("At most %(n)d rows per file.", n=MAX_ROWS)}))
            return report
        data, errors = validate_row(row)
        if data is not None:
            if data.source_ref in seen_refs:
                errors = {"source_ref": _("This source_ref appears twice in the file.")}
            elif _already_entered(data.source_ref):
                errors = {"source_ref": _("A warning with this source_ref was already entered.")}
            else:
                try:
                    station = warning_intake.resolve_station(data, None)
                    if not chief.is_admin and station.id != chief.station_id:
                        errors = {
                            "station_code": _("You can only enter warnings for your own station.")
                        }
                except warning_intake.IntakeError as exc:
                    errors = exc.errors
            seen_refs.add(data.source_ref)
        if errors:
            report.errors.append((line, errors))
        else:
            inputs.append((line, data))
    if report.rows == 0:
        report.errors.append((1, {"file": _("The file has no rows.")}))
    if report.errors:
        return report
    for _line, data in inputs:
        report.created.append(warning_intake.enter_by_hand(data, chief, source="csv").warning)
    return report


def _already_entered(source_ref: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Warning.id).where(
                Warning.token_id.is_(None), Warning.source_ref == source_ref
            )
        )
        is not None
    )
