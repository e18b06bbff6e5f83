"""The simulator inside `warmysender serve` when `LINKEDIN_BACKEND=simulator`:

    sim = embedded.start("127.0.0.1", 8765, api_key=key, webhook_url=intake, webhook_headers={...})
    os.environ["UNIPILE_DSN"] = sim.base_url   # for the web and worker children
    ...
    sim.stop()

State lives in the serving process's memory, written to `state_file` after each change when one
is given (otherwise it starts empty on every `serve`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from warmysender.linkedin.simulator.server import SimulatorServer


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str | None = None,
    webhook_url: str | None = None,
    webhook_headers: Mapping[str, str] | None = None,
    state_file: Path | None = None,
) -> SimulatorServer:
    """Start the simulator on a daemon thread and return it (`.base_url`, `.api_key`, `.stop()`).
    With `state_file` (e.g. `$WARMYSENDER_HOME/unipile-sim.state`) its accounts, people,
    invitations and chats survive a restart, so accounts connected in a demo stay connected."""
    return SimulatorServer(
        host=host,
        port=port,
        api_key=api_key,
        webhook_url=webhook_url,
        webhook_headers=webhook_headers,
        state_file=state_file,
    ).start()
