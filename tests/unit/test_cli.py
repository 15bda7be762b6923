"""The `callbid` command line cannot mislead: errors name what to fix in one line, commands
that read the database never create one, the README's settings table is every setting."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbid.adapters.storage.db import migrate
from callbid.cli import main
from callbid.logs import stop_logging
from callbid.service.demo import seed_and_describe
from callbid.settings import Settings

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in [n for n in os.environ if n.startswith("CALLBID_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    stop_logging()  # `serve` configured this process's logging before it refused
    root.handlers[:] = handlers
    root.setLevel(level)


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err
    return err


def test_the_readme_table_has_every_setting_and_no_other() -> None:
    text = README.read_text()
    table = text[text.index("| variable | default | meaning |") :].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(CALLBID_[A-Z_]+)`", table))
    assert documented == {f"CALLBID_{name.upper()}" for name in Settings.model_fields}


def test_a_wrong_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLBID_PORT", "abc")
    monkeypatch.setenv("CALLBID_REDIS_URL", "redis://:hunter2@nowhere/0")
    monkeypatch.setenv("CALLBID_RETENTION_HOURS", "-1")
    assert main(["demo"]) == 2
    err = one_line(capsys)
    assert "CALLBID_PORT=abc: Input should be a valid integer" in err
    assert "CALLBID_RETENTION_HOURS=-1: Input should be greater than 0" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("command", [["demo"], ["demo", "--json"], ["company", "X"], ["purge"]])
def test_commands_reading_the_database_refuse_to_create_one(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 2
    assert one_line(capsys) == (
        f"callbid: no database at {tmp_path / 'callbid.db'}: run `callbid serve` there first "
        "(it creates it), or point CALLBID_DATABASE_URL (or --database-url) at the server's "
        "database"
    )
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_sqlite_path_in_no_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/callbid.db"
    assert main(["--database-url", url, "serve"]) == 2
    err = one_line(capsys)
    assert f"the directory {tmp_path / 'missing'} does not exist" in err
    assert "CALLBID_DATABASE_URL" in err


def test_serve_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert one_line(capsys) == (
        f"callbid: port {port} on 127.0.0.1 is in use: stop the other server, or listen on "
        "another port with --port (or CALLBID_PORT)"
    )
    assert not Path("callbid.db").exists()  # refused before migrating


@pytest.mark.postgres
def test_a_missing_postgres_database_says_how_to_create_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/callbid_no_such_database"
    assert main(["--database-url", url, "demo"]) == 2
    assert one_line(capsys) == (
        "callbid: PostgreSQL database 'callbid_no_such_database' does not exist on "
        "127.0.0.1:5432: create it with `createdb -h 127.0.0.1 -p 5432 -U postgres "
        "callbid_no_such_database`, or fix CALLBID_DATABASE_URL (or --database-url)"
    )


def test_a_postgres_server_not_running_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/callbid"
        assert main(["--database-url", url, "company", "X"]) == 2
    err = one_line(capsys)
    assert err.startswith(f"callbid: cannot connect to PostgreSQL at 127.0.0.1:{port}")
    assert "is it running?" in err


def demo_database(tmp_path: Path, serving_at: str | None = None) -> Settings:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/served.db")
    migrate(settings.database_url)
    asyncio.run(seed_and_describe(settings, seed=True, serving_at=serving_at))
    return settings


def test_demo_prints_where_serve_recorded_it_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path, serving_at="http://127.0.0.1:9137")
    assert main(["--database-url", settings.database_url, "demo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rtb_url"] == "http://127.0.0.1:9137/rtbs.json"
    assert main(["--database-url", settings.database_url, "demo"]) == 0
    assert "curl -s -X POST 'http://127.0.0.1:9137/rtbs.json?key=" in capsys.readouterr().out


def test_demo_prefers_the_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path, serving_at="http://127.0.0.1:9137")
    monkeypatch.setenv("CALLBID_PUBLIC_URL", "https://calls.example.com/")
    assert main(["--database-url", settings.database_url, "demo", "--json"]) == 0
    rtb_url = json.loads(capsys.readouterr().out)["rtb_url"]
    assert rtb_url == "https://calls.example.com/rtbs.json"


def test_simulate_refuses_another_companys_key_without_its_carrier_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path)
    args = ["--database-url", settings.database_url, "simulate", "--url", "http://127.0.0.1:9"]
    assert main([*args, "--key", "another-companys-key", "--admin-token", "theirs"]) == 2
    assert one_line(capsys) == (
        "callbid simulate: --key and --admin-token are not the local demo's: pass "
        "--carrier-token too (the Twilio auth token of the company that owns the key's "
        "tracking numbers)"
    )
    # With its carrier token the run is made (and fails here only on the unreachable URL).
    assert main([*args, "--key", "k", "--admin-token", "a", "--carrier-token", "c"]) == 2
    assert "cannot reach http://127.0.0.1:9" in one_line(capsys)


def test_demo_json_gives_the_console_sign_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path, serving_at="http://127.0.0.1:9137")
    assert main(["--database-url", settings.database_url, "demo", "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    assert demo["console_url"] == "http://127.0.0.1:9137/console"
    assert demo["email"] == "owner@demo.example"
    assert len(demo["password"]) >= 12
    assert main(["--database-url", settings.database_url, "demo"]) == 0
    assert f"password: {demo['password']}" in capsys.readouterr().out


def test_user_add_generates_a_password_and_refuses_a_taken_email(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path)
    args = ["--database-url", settings.database_url, "user", "add", "--company", "1"]
    assert main([*args, "--email", "Viewer@Demo.example", "--role", "viewer"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["email"] == "viewer@demo.example"
    assert added["role"] == "viewer"
    assert len(added["password"]) >= 12

    assert main([*args, "--email", "viewer@demo.example"]) == 2
    assert one_line(capsys) == "callbid: email: viewer@demo.example is already a user"
    assert main([*args, "--email", "not-an-email"]) == 2
    assert "is not an email address" in one_line(capsys)
    other = ["--database-url", settings.database_url, "user", "add", "--company", "99"]
    assert main([*other, "--email", "x@demo.example"]) == 2
    assert one_line(capsys) == "callbid: company 99 not found"


def test_users_are_listed_disabled_enabled_and_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_database(tmp_path)
    db = ["--database-url", settings.database_url, "user"]
    assert main([*db, "add", "--company", "1", "--email", "ann@demo.example"]) == 0
    first = json.loads(capsys.readouterr().out)["password"]

    assert main([*db, "list", "--company", "1"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [u["email"] for u in listed] == ["ann@demo.example", "owner@demo.example"]
    assert all("password" not in u for u in listed)

    assert main([*db, "disable", "--email", "Ann@Demo.example"]) == 0
    assert json.loads(capsys.readouterr().out)["disabled"] is True
    assert main([*db, "enable", "--email", "ann@demo.example"]) == 0
    assert json.loads(capsys.readouterr().out)["disabled"] is False
    assert main([*db, "reset", "--email", "ann@demo.example"]) == 0
    second = json.loads(capsys.readouterr().out)["password"]
    assert second != first
    assert main([*db, "reset", "--email", "nobody@demo.example"]) == 2
    assert one_line(capsys) == "callbid: email: no user nobody@demo.example"
