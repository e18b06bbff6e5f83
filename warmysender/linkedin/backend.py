"""`LINKEDIN_BACKEND=simulator`: the bundled Unipile simulator wired to this installation.

`warmysender serve` calls `start_embedded_simulator` before it starts the web and worker
children, so they find the simulator in UNIPILE_DSN, accept its webhooks with the generated
secret, and the LinkedIn pages work on a fresh machine without a Unipile key.
"""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from pathlib import Path

from warmysender.linkedin.intake import SECRET_HEADER
from warmysender.linkedin.simulator import SimulatorServer, embedded

INTAKE_PATH = "/linkedin/hooks/unipile/"


def start_embedded_simulator(
    site_url: str,
    env: MutableMapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: Path | None = None,
) -> SimulatorServer:
    """Start the simulator and put UNIPILE_DSN, UNIPILE_API_KEY and UNIPILE_WEBHOOK_SECRET into
    `env` (keeping a key or secret already set there). With `state_file` its accounts survive a
    restart, so what was connected in a demo stays connected."""
    api_key = env.get("UNIPILE_API_KEY") or "sim-" + secrets.token_urlsafe(18)
    secret = env.get("UNIPILE_WEBHOOK_SECRET") or secrets.token_urlsafe(24)
    sim = embedded.start(
        host,
        port,
        api_key=api_key,
        webhook_url=site_url.rstrip("/") + INTAKE_PATH,
        webhook_headers={SECRET_HEADER: secret},
        state_file=state_file,
    )
    env["UNIPILE_DSN"] = sim.base_url
    env["UNIPILE_API_KEY"] = api_key
    env["UNIPILE_WEBHOOK_SECRET"] = secret
    return sim
