"""The `warmysender` command, run as a real process, as a person or a script would."""

from __future__ import annotations

import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from warmysender.accounts.models import ApiKey, User

CLI = [sys.executable, "-m", "warmysender.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(name: str | None = None) -> str:
    """A URL for the test server (unix socket or TCP), database `name` or the test database."""
    s = connection.settings_dict
    host = s["HOST"] or ""
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    db = name or s["NAME"]
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db}?host={host}&port={s['PORT'] or 5432}"
    return f"postgresql://{auth}@{host}:{s['PORT'] or 5432}/{db}"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), "WARMYSENDER_HOME": str(tmp_path)}


@pytest.mark.pg_server
@pytest.mark.django_db(transaction=True)
def test_createuser_then_createkey_prints_only_the_key(cli_env: dict[str, str]) -> None:
    made = run_cli(
        "createuser",
        "--email",
        "Script@Example.com",
        "--password",
        "s3cure-enough-pw",
        "--workspace",
        "Scripted",
        env=cli_env,
    )
    assert made.returncode == 0, made.stderr
    user = User.objects.get(email="script@example.com")
    assert user.current_workspace is not None and user.current_workspace.name == "Scripted"

    key = run_cli(
        "createkey",
        "--email",
        "script@example.com",
        "--scopes",
        "prospects:read,prospects:write",
        "--name",
        "ci",
        env=cli_env,
    )
    assert key.returncode == 0, key.stderr
    raw = key.stdout.strip()
    assert key.stdout == raw + "\n", "stdout must hold the key and nothing else"
    assert raw.startswith("ws_")
    stored = ApiKey.objects.get(workspace=user.current_workspace)
    assert stored.prefix == raw[: len(stored.prefix)]
    assert raw not in stored.key_hash
    assert sorted(stored.scopes) == ["prospects:read", "prospects:write"]


@pytest.mark.django_db(transaction=True)
def test_createkey_refuses_unknown_scopes_and_users(cli_env: dict[str, str]) -> None:
    run_cli("createuser", "--email", "a@example.com", "--password", "s3cure-enough-pw", env=cli_env)
    bad_scope = run_cli(
        "createkey", "--email", "a@example.com", "--scopes", "prospects:admin", env=cli_env
    )
    assert bad_scope.returncode == 2
    assert bad_scope.stdout == ""
    assert "prospects:admin" in bad_scope.stderr
    nobody = run_cli(
        "createkey", "--email", "nobody@example.com", "--scopes", "jobs:read", env=cli_env
    )
    assert nobody.returncode == 2
    assert "no user" in nobody.stderr
    assert not ApiKey.objects.exists()


def test_createuser_rejects_a_weak_password(cli_env: dict[str, str]) -> None:
    weak = run_cli("createuser", "--email", "w@example.com", "--password", "123", env=cli_env)
    assert weak.returncode == 2
    assert "password" in weak.stderr


@pytest.mark.pg_server
@pytest.mark.django_db(transaction=True)
def test_check_fails_until_migrations_are_applied(cli_env: dict[str, str]) -> None:
    name = "warmysender_check_probe"
    admin_url = database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        env = {**cli_env, "DATABASE_URL": database_url(name)}
        before = run_cli("check", env=env)
        assert before.returncode == 1
        assert "not applied" in before.stderr
        assert run_cli("migrate", env=env).returncode == 0
        after = run_cli("check", env=env)
        assert after.returncode == 0, after.stderr
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_check_fails_when_the_database_is_unreachable(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"}
    result = run_cli("check", env=env)
    assert result.returncode == 1
    assert "unreachable" in result.stderr


# --- serve: embedded PostgreSQL, web, worker; Ctrl-C stops everything -------------------------


@pytest.fixture
def serve_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    # Never leave a server behind, whatever the test did.
    pid_file = home / "pg" / "postmaster.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        with_suppress_kill(pid)


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def start_serve(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen(
        [*CLI, "serve", "--home", str(home), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_announcement(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "running at" in line:
            return line
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError("serve did not announce its URL in time")


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_serve_runs_everything_on_embedded_postgres_and_stops_cleanly(serve_home: Path) -> None:
    port = free_port()
    proc = start_serve(serve_home, port)
    try:
        line = wait_for_announcement(proc)
        assert f"http://127.0.0.1:{port}" in line
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and b'"ok"' in body
        assert (serve_home / "pg" / "postmaster.pid").exists()

        # A second command on the same home attaches to the running database.
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        made = run_cli(
            "createuser",
            "--home",
            str(serve_home),
            "--email",
            "keep@example.com",
            "--password",
            "s3cure-enough-pw",
            env=env,
        )
        assert made.returncode == 0, made.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert not (serve_home / "pg" / "postmaster.pid").exists(), "embedded PostgreSQL still runs"
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/healthz")

    # Serving again on the same home keeps the data.
    proc = start_serve(serve_home, port)
    try:
        wait_for_announcement(proc)
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        again = run_cli(
            "createuser",
            "--home",
            str(serve_home),
            "--email",
            "keep@example.com",
            "--password",
            "s3cure-enough-pw",
            env=env,
        )
        assert again.returncode == 2
        assert "already exists" in again.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def log_in(base: str, email: str, password: str) -> http.cookiejar.CookieJar:
    """The cookies of a session logged in through the real log-in form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/login/", timeout=10).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"email": email, "password": password, "csrfmiddlewaretoken": csrf}
    ).encode()
    opener.open(urllib.request.Request(f"{base}/login/", data=form), timeout=10).read()
    assert any(c.name == "sessionid" for c in jar), "the log-in did not take"
    return jar


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.slow
def test_serve_with_the_linkedin_simulator_backend_connects_through_its_hosted_page(
    serve_home: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "UNIPILE_DSN")}
    env["LINKEDIN_BACKEND"] = "simulator"
    proc = subprocess.Popen(
        [*CLI, "serve", "--home", str(serve_home), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        simulator = ""
        while not simulator:
            line = proc.stderr.readline()
            assert line, "serve exited before starting the simulator"
            if "Unipile simulator answers at" in line:
                simulator = line.rsplit(" ", 1)[-1].strip()
        wait_for_announcement(proc)
        # The simulator is Unipile-shaped: no API key, no answer.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{simulator}/api/v1/accounts", timeout=5)
        assert refused.value.code == 401

        made = run_cli(
            "createuser",
            "--home",
            str(serve_home),
            "--email",
            "li@example.com",
            "--password",
            "s3cure-enough-pw",
            env={k: v for k, v in env.items() if k != "LINKEDIN_BACKEND"},
        )
        assert made.returncode == 0, made.stderr
        jar = log_in(base, "li@example.com", "s3cure-enough-pw")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
        page = opener.open(f"{base}/linkedin/accounts/connect/", timeout=10).read().decode()
        assert "not configured" not in page
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {
                "method": "hosted",
                "proxy_mode": "auto",
                "strategy": "new_account",
                "csrfmiddlewaretoken": csrf,
            }
        ).encode()
        with pytest.raises(urllib.error.HTTPError) as redirected:
            opener.open(
                urllib.request.Request(f"{base}/linkedin/accounts/connect/", data=form), timeout=10
            )
        # The web server asked the simulator for a hosted sign-in link and sent the person there.
        location = redirected.value.headers["Location"]
        assert redirected.value.code == 302 and location.startswith(simulator), location
        status, body = get(location)
        assert status == 200 and b"<form" in body
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{simulator}/api/v1/accounts", timeout=2)
