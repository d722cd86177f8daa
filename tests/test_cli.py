"""The flask commands deployments rely on: clear errors for bad arguments, nothing half-done."""

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from fieldapp import tokens
from fieldapp.auth.passwords import verify_password
from fieldapp.extensions import db
from fieldapp.models import IntakeToken, Station, User, Warning

ROOT = Path(__file__).resolve().parent.parent


def test_create_station(runner):
    result = runner.invoke(
        args=[
            "create-station",
            "--code",
            "CG",
            "--name",
            "城关派出所",
            "--lat",
            "27.8",
            "--lon",
            "114.9",
            "--ack-timeout-s",
            "60",
        ]
    )
    assert result.exit_code == 0, result.output
    station = db.session.scalar(sa.select(Station))
    assert (station.code, station.name, station.ack_timeout_s) == ("CG", "城关派出所", 60)


def test_create_station_bad_arguments(runner, make):
    make.station("CG")
    db.session.commit()
    bad = [
        ["--code", "CG", "--name", "dup", "--lat", "1", "--lon", "1"],
        ["--code", "X", "--name", "n", "--lat", "91", "--lon", "1"],
        ["--code", "X", "--name", "n", "--lat", "north", "--lon", "1"],
        ["--code", "X", "--name", "n", "--lat", "1", "--lon", "1", "--ack-timeout-s", "0"],
        ["--code", "X", "--name", "n", "--lat", "1"],
    ]
    for args in bad:
        result = runner.invoke(args=["create-station", *args])
        assert result.exit_code != 0, args
        assert "Error" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Station)) == 1


def test_create_user_reads_password_from_stdin(runner, make):
    make.station("CG")
    db.session.commit()
    result = runner.invoke(
        args=[
            "create-user",
            "--username",
            "wang",
            "--role",
            "officer",
            "--station",
            "CG",
            "--display-name",
            "王警官",
        ],
        input="a-long-password-9\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User))
    assert user.display_name == "王警官" and user.role == "officer"
    assert verify_password(user.password_hash, "a-long-password-9")
    assert "a-long-password-9" not in user.password_hash


def test_create_user_errors(runner, make):
    make.station("CG")
    db.session.commit()
    cases = [
        (["--username", "a", "--role", "general", "--station", "CG"], "x-long-password-1\n"),
        (["--username", "a", "--role", "officer", "--station", "NOPE"], "x-long-password-1\n"),
        (["--username", "a", "--role", "officer", "--station", "CG"], "short\n"),
        (["--username", "a b", "--role", "officer", "--station", "CG"], "x-long-password-1\n"),
        (["--username", "a", "--role", "officer", "--station", "CG"], "\n"),
    ]
    for args, stdin in cases:
        result = runner.invoke(args=["create-user", *args], input=stdin)
        assert result.exit_code != 0, (args, result.output)
        assert "Error" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_create_token_prints_once_and_stores_hash(runner, make):
    make.station("CG")
    db.session.commit()
    result = runner.invoke(args=["create-token", "--name", "centre", "--station", "CG"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()  # the token alone on stdout, for scripts
    assert "shown once" in result.stderr
    assert f"Authorization: Bearer {plaintext}" in result.stderr
    row = db.session.scalar(sa.select(IntakeToken))
    assert row.token_hash == tokens.hash_token(plaintext)
    assert row.station.code == "CG"
    assert tokens.find_token(plaintext).id == row.id


def test_create_token_unknown_station(runner):
    result = runner.invoke(args=["create-token", "--name", "x", "--station", "NOPE"])
    assert result.exit_code != 0 and "NOPE" in result.output


def test_vapid_keys_made_once(runner, app):
    first = runner.invoke(args=["vapid-keys"])
    second = runner.invoke(args=["vapid-keys"])
    assert first.exit_code == 0 and first.output == second.output
    key = first.output.strip()
    assert len(key) == 87 and "=" not in key  # 65-byte uncompressed P-256 point, base64url


def test_demo_fills_an_empty_database_and_refuses_twice(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "chief_cg" in result.output and "cgmj01" in result.output
    users = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    warnings = db.session.scalar(sa.select(sa.func.count()).select_from(Warning))
    assert 40 <= users <= 60
    assert warnings > 500
    open_now = db.session.scalar(sa.select(sa.func.count()).where(Warning.status != "resolved"))
    assert open_now >= 3
    again = runner.invoke(args=["demo"])
    assert again.exit_code != 0 and "empty" in again.output


def test_demo_users_can_log_in(runner, auth):
    runner.invoke(args=["demo"])
    from fieldapp.demo import DEMO_PASSWORD

    assert auth.login("cgmj01", DEMO_PASSWORD).headers["Location"].endswith("/field/")
    auth.logout()
    assert auth.login("chief_cg", DEMO_PASSWORD).headers["Location"].endswith("/board/")


def test_help_writes_nothing_under_instance(tmp_path):
    """`flask --help` has no side effects: no secret key or database appears."""
    instance = tmp_path / "instance"
    env = {**os.environ, "FIELDAPP_INSTANCE_PATH": str(instance), "PYTHONPATH": str(ROOT)}
    env.pop("SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert not instance.exists() or not any(instance.iterdir())
