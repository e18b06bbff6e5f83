"""A Unipile v1 simulator shipped with the product: the API paths, enums, pagination, error bodies
and webhooks our client depends on, a hosted-auth page, and a control API to move it.
See docs/unipile-simulator.md."""

from warmysender.linkedin.simulator.app import create_app
from warmysender.linkedin.simulator.server import SimulatorServer, build_state
from warmysender.linkedin.simulator.state import SimulatorState

__all__ = ["SimulatorServer", "SimulatorState", "build_state", "create_app"]
