"""What the anti-fraud centre learns about one of its warnings.

One document, shared by `GET /api/v1/warnings/<id>` and the signed webhooks, so the two never
drift apart. Only what the centre already knows or needs: no resident data beyond its own
`source_ref`, the officer's display name and the attempts' channels and times.
"""

from fieldapp.models import Warning


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _amount(value) -> float | None:
    return float(value) if value is not None else None


def feedback(warning: Warning) -> dict:
    """Status, officer, attempts and outcome of `warning`, as JSON-ready values."""
    officer = warning.owner
    outcome = warning.outcome
    return {
        "id": warning.id,
        "source_ref": warning.source_ref,
        "status": warning.status,
        "station_code": warning.station.code,
        "received_at": warning.received_at.isoformat(),
        "accepted_at": _iso(warning.accepted_at),
        "first_contact_at": _iso(warning.first_contact_at),
        "resolved_at": _iso(warning.resolved_at),
        "officer": {"id": officer.id, "display_name": officer.display_name} if officer else None,
        "attempts": [
            {
                "channel": a.channel,
                "reached": a.reached,
                "attempted_at": a.attempted_at.isoformat(),
                "confirmed": bool(a.confirmations),
            }
            for a in warning.attempts
        ],
        "outcome": {
            "outcome": outcome.outcome,
            "recorded_at": outcome.recorded_at.isoformat(),
            "app_installed": outcome.app_installed,
            "loss_amount": _amount(outcome.loss_amount),
            "defrauded_after": outcome.defrauded_after,
            "later_loss_amount": _amount(outcome.later_loss_amount),
        }
        if outcome
        else None,
    }
