"""Parsing a CSV batch of warnings: every row checked before any is stored."""

import csv
import io
import secrets
from dataclasses import dataclass, field

from flask_babel import gettext as _
from pydantic import ValidationError

from fieldapp import warning_intake
from fieldapp.models import User, Warning
from fieldapp.refusals import Refusal
from fieldapp.validation import field_errors
from fieldapp.warning_intake import WarningIn

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


def _check(data: WarningIn, chief: User, seen_refs: set[str]) -> dict[str, str]:
    """What is wrong with a valid row in its context: its station, its source_ref."""
    if data.source_ref in seen_refs:
        return {"source_ref": _("This source_ref appears twice in the file.")}
    try:
        station = warning_intake.station_for(data, chief)
    except Refusal as exc:
        return exc.errors()
    if warning_intake.manual_ref_taken(station, data.source_ref):
        return Refusal("source_ref_taken").errors()
    return {}


def _rows(text: str, report: ImportReport):
    """(line, row) for every non-empty row; a malformed file becomes a file error."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            message = _("Missing columns: %(cols)s", cols=", ".join(missing))
            report.errors.append((1, {"file": message}))
            return
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield line, row
    except csv.Error:
        # A cell over the csv module's 128 KiB limit, or a NUL outside quotes.
        line = reader.line_num or 1
        report.errors.append((line, {"file": _("Line %(n)d is not valid CSV.", n=line)}))


def import_csv(raw: bytes, chief: User) -> ImportReport:
    """Check every row; store and dispatch all of them, or none when any row is wrong."""
    report = ImportReport()
    try:
        text = decode(raw)
    except UnicodeDecodeError:
        report.errors.append((0, {"file": _("The file is neither UTF-8 nor GB18030 text.")}))
        return report
    inputs: list[tuple[int, WarningIn]] = []
    seen_refs: set[str] = set()
    for line, row in _rows(text, report):
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append((line, {"file": _("At most %(n)d rows per file.", n=MAX_ROWS)}))
            return report
        data, errors = validate_row(row)
        if data is not None:
            errors = _check(data, chief, seen_refs)
            seen_refs.add(data.source_ref)
        if errors:
            report.errors.append((line, errors))
        else:
            inputs.append((line, data))
    if report.rows == 0 and not report.errors:
        report.errors.append((1, {"file": _("The file has no rows.")}))
    if report.errors:
        return report
    for line, data in inputs:
        try:
            result = warning_intake.enter_by_hand(data, chief, source="csv")
        except Refusal as exc:
            # Lost a race with another entry; the whole batch is rolled back by the caller.
            report.errors.append((line, exc.errors()))
            report.created.clear()
            return report
        report.created.append(result.warning)
    return report
