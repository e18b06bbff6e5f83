"""The `warmysender` command.

`serve` runs everything on one machine (embedded PostgreSQL when DATABASE_URL is unset, migrations,
web server, worker with the periodic scheduler). `web` and `worker` are the same pieces run
separately, any number of each, against one DATABASE_URL. Django is configured only after the
database URL is known, so nothing here imports settings at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _quiet_libraries() -> None:
    import logging
    import warnings

    # platformdirs (via pgserver) warns when XDG_RUNTIME_DIR is unset, as it is under sudo or cron.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

    # pgserver narrates every start and stop at INFO; only its problems matter to a person.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- database -------------------------------------------------------------------------------


@contextlib.contextmanager
def database(home: Path | None) -> Iterator[None]:
    """Make DATABASE_URL point at a server for the duration of the block.

    With DATABASE_URL set this does nothing. Otherwise it starts (or re-attaches to) the embedded
    server under HOME/pg and stops it on exit unless another process still uses it.
    """
    if home is not None:
        os.environ["WARMYSENDER_HOME"] = str(home)
    if os.environ.get("DATABASE_URL"):
        yield
        return
    from warmysender.lib import embedded_pg
    from warmysender.lib.env import warmysender_home

    server = embedded_pg.start(warmysender_home())
    os.environ["DATABASE_URL"] = embedded_pg.url_for(server)
    try:
        yield
    finally:
        os.environ.pop("DATABASE_URL", None)
        with contextlib.suppress(Exception):
            server.cleanup()


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warmysender.settings")
    import django

    django.setup()


def _call(*args: str, **options: Any) -> None:
    from django.core.management import call_command

    call_command(*args, **options)


# --- commands -------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        _call("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor
        from django.db.utils import Error as DatabaseError

        try:
            connection.ensure_connection()
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            _err(f"database unreachable: {exc}")
            return 1
        if pending:
            _err(f"{len(pending)} migration(s) not applied; run `warmysender migrate`.")
            return 1
    print("ok")
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        from django.contrib.auth.password_validation import validate_password
        from django.core.exceptions import ValidationError
        from django.utils import timezone

        from warmysender.accounts import services

        try:
            validate_password(args.password)
        except ValidationError as exc:
            _err("password rejected: " + " ".join(exc.messages))
            return 2
        try:
            user = services.sign_up(
                email=args.email,
                password=args.password,
                workspace_name=args.workspace or "My workspace",
                now=timezone.now(),
            )
        except services.AccountError as exc:
            _err(exc.message)
            return 2
        _err(f"created {user.email} with workspace {user.current_workspace}")
    return 0


def cmd_createkey(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        from django.utils import timezone

        from warmysender.accounts import services
        from warmysender.accounts.models import Membership, Role, User

        user = User.objects.filter(email__iexact=args.email.strip()).first()
        if user is None:
            _err(f"no user with email {args.email}")
            return 2
        memberships = Membership.objects.select_related("workspace").filter(user=user)
        if args.workspace:
            memberships = memberships.filter(workspace__name=args.workspace)
        membership = memberships.order_by("created_at").first()
        if membership is None:
            _err(f"{user.email} is not a member of workspace {args.workspace!r}")
            return 2
        if not membership.has_role(Role.ADMIN):
            _err("only owners and admins can create API keys")
            return 2
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        try:
            issued = services.create_api_key(
                workspace=membership.workspace,
                name=args.name or "CLI key",
                scopes=scopes,
                actor=user,
                now=timezone.now(),
            )
        except services.AccountError as exc:
            _err(exc.message)
            return 2
    # The only thing written to stdout, so scripts can capture it.
    print(issued.raw, flush=True)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    with database(args.home):
        import uvicorn

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warmysender.settings")
        uvicorn.run(
            "warmysender.asgi:application",
            host=args.host,
            port=args.port,
            workers=args.workers,
            lifespan="off",
            log_level="warning",
            proxy_headers=True,
        )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        argv = ["worker", f"--concurrency={args.concurrency}"]
        _call("procrastinate", *argv)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Everything on one machine. Children inherit DATABASE_URL; Ctrl-C stops them all."""
    with database(args.home):
        _setup_django()
        _call("migrate", interactive=False, verbosity=0)
        from django.db import connections

        connections.close_all()
        url = f"http://{args.host}:{args.port}"
        simulator = _start_linkedin_simulator(url)
        base = [sys.executable, "-m", "warmysender.cli"]
        children = {
            "web": subprocess.Popen(
                [*base, "web", "--host", args.host, "--port", str(args.port)],
                start_new_session=True,
            ),
            "worker": subprocess.Popen([*base, "worker"], start_new_session=True),
        }
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        announced = False
        exit_code = 0
        try:
            while not stopping:
                for name, child in children.items():
                    code = child.poll()
                    if code is not None:
                        _err(f"{name} exited with status {code}; stopping.")
                        exit_code = code or 1
                        stopping = True
                if not announced and _healthy(url):
                    print(f"WarmySender is running at {url}  (Ctrl-C to stop)", flush=True)
                    announced = True
                time.sleep(0.3)
        finally:
            _stop_children(children.values())
            if simulator is not None:
                simulator.stop()
        _err("stopped.")
    return exit_code


def _start_linkedin_simulator(site_url: str) -> Any:
    """With LINKEDIN_BACKEND=simulator (and no UNIPILE_DSN of its own), the bundled Unipile
    simulator runs in this process for the web server and the worker, which inherit its address,
    key and webhook secret; its accounts are kept under the home directory."""
    from django.conf import settings

    if settings.LINKEDIN_BACKEND != "simulator" or os.environ.get("UNIPILE_DSN"):
        return None
    from warmysender.lib.env import warmysender_home
    from warmysender.linkedin.backend import start_embedded_simulator

    simulator = start_embedded_simulator(
        site_url, os.environ, state_file=warmysender_home() / "unipile-sim.state"
    )
    _err(f"LinkedIn: the bundled Unipile simulator answers at {simulator.base_url}")
    return simulator


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop_children(children: Sequence[subprocess.Popen[bytes]] | Any) -> None:
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cmd_unipile_sim(args: argparse.Namespace) -> int:
    """The bundled Unipile simulator in the foreground; needs no database."""
    import secrets

    from warmysender.linkedin.simulator import server

    api_key = (
        args.api_key or os.environ.get("UNIPILE_API_KEY") or "sim-" + secrets.token_urlsafe(18)
    )
    headers: dict[str, str] = {}
    for header in args.webhook_header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            _err(f"--webhook-header must look like 'Name: value', got {header!r}")
            return 2
        headers[name.strip()] = value.strip()
    _err(f"Unipile simulator at UNIPILE_DSN=http://{args.host}:{args.port}  (Ctrl-C to stop)")
    _err(f"API key: {api_key}")
    server.run(
        host=args.host,
        port=args.port,
        api_key=api_key,
        webhook_url=args.webhook_url,
        webhook_headers=headers,
        state_file=args.state_file,
    )
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    with database(args.home):
        _setup_django()
        from django.core.management import execute_from_command_line

        execute_from_command_line(["warmysender", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warmysender", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument(
            "--home",
            type=Path,
            default=None,
            help="data directory (default $WARMYSENDER_HOME or ~/.warmysender)",
        )
        return p

    p = command("serve", "run web server, worker and scheduler together")
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.set_defaults(func=cmd_serve)

    p = command("web", "run the web server only")
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_web)

    p = command("worker", "run a background worker (jobs and the periodic scheduler)")
    p.add_argument("--concurrency", type=int, default=4)
    p.set_defaults(func=cmd_worker)

    p = command("migrate", "apply database migrations")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=cmd_migrate)

    p = command("check", "exit 0 when the database is reachable and migrated")
    p.set_defaults(func=cmd_check)

    p = command("createuser", "create a user and their workspace")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--workspace", default=None)
    p.set_defaults(func=cmd_createuser)

    p = command("createkey", "create an API key and print it once")
    p.add_argument("--email", required=True)
    p.add_argument("--workspace", default=None)
    p.add_argument("--scopes", required=True, help="comma-separated, e.g. prospects:read")
    p.add_argument("--name", default=None)
    p.set_defaults(func=cmd_createkey)

    p = sub.add_parser("unipile-sim", help="run the bundled Unipile simulator (no database)")
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--api-key", default=None, help="X-API-KEY to accept (default $UNIPILE_API_KEY or random)"
    )
    p.add_argument(
        "--webhook-url", default=None, help="where to POST account, message and relation webhooks"
    )
    p.add_argument(
        "--webhook-header",
        action="append",
        default=[],
        help="'Name: value' sent with every webhook (repeatable), e.g. the intake's secret header",
    )
    p.add_argument(
        "--state-file", type=Path, default=None, help="keep the simulated world in this file"
    )
    p.set_defaults(func=cmd_unipile_sim)

    p = command("manage", "run any Django management command")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
