"""A real IMAP server for tests: Debian's Dovecot, all state in one temporary directory.

    server = DovecotServer(tls_files=...).start()
    server.add_user("me@example.com", "pw")
    IMAPClient(server.host, port=server.ssl_port, ssl=True, ssl_context=ctx)  # or .port + STARTTLS
    server.stop()

Dovecot's login processes refuse to run as root, so when the tests run as root every Dovecot
process runs as `nobody` (the directory is handed over to it). A passwd-file user added while the
server runs is seen after `doveadm reload`, which `add_user` does. The anvil brute-force penalty is
switched off for 127.0.0.1, or a failed login would delay the next good one by seconds.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from warmysender.testing.smtp import TlsFiles, free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"


def dovecot_available() -> bool:
    return Path(DOVECOT).exists() and Path(DOVEADM).exists()


class DovecotServer:
    def __init__(self, *, tls_files: TlsFiles, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)  # plain IMAP, with STARTTLS
        self.ssl_port = free_port(host)  # implicit TLS
        self.tls_files = tls_files
        self.ca_file = tls_files.ca_file
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.conf = self.dir / "dovecot.conf"
        self._user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._started = False

    def _as_user(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self._user, "--", *command]
        return list(command)

    def start(self) -> DovecotServer:
        entry = pwd.getpwnam(self._user)
        uid, gid = entry.pw_uid, entry.pw_gid
        group = _group_name(gid)
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        shutil.copy(self.tls_files.cert_file, self.dir / "cert.pem")
        shutil.copy(self.tls_files.key_file, self.dir / "key.pem")
        (self.dir / "users").write_text("")
        self.conf.write_text(_config(self, self._user, group, uid, gid))
        self.dir.chmod(0o755)
        if os.geteuid() == 0:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, uid, gid)
        subprocess.run(self._as_user(DOVECOT, "-c", str(self.conf)), check=True)
        self._started = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        log = (self.dir / "dovecot.log").read_text() if (self.dir / "dovecot.log").exists() else ""
        self.stop()
        raise RuntimeError(f"Dovecot did not start:\n{log}")

    def add_user(self, login: str, password: str) -> None:
        """A mailbox that accepts `password` (plain text in the test's passwd-file)."""
        with (self.dir / "users").open("a") as users:
            users.write(f"{login}:{{PLAIN}}{password}::::::\n")
        subprocess.run(self._as_user(DOVEADM, "-c", str(self.conf), "reload"), check=True)

    def stop(self) -> None:
        if self._started:
            # `doveadm stop` waits for the master to exit, so the ports are free afterwards.
            subprocess.run(
                self._as_user(DOVEADM, "-c", str(self.conf), "stop"), check=False, timeout=30
            )
            self._started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _config(server: DovecotServer, user: str, group: str, uid: int, gid: int) -> str:
    d = server.dir
    return f"""\
protocols = imap
listen = {server.host}
base_dir = {d}/run
state_dir = {d}/state
instance_name = dovecot-test-{server.port}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{d}/mail/%u/Maildir
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid={uid} gid={gid} home={d}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {server.host}
    port = {server.port}
  }}
  inet_listener imaps {{
    address = {server.host}
    port = {server.ssl_port}
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = {user}
  }}
  unix_listener stats-writer {{
    user = {user}
  }}
}}
"""
