"""`DeploymentError`: a deployment that cannot be made, found or activated as asked."""

from __future__ import annotations

from app.contracts.errors import ConfigError


class DeploymentError(ConfigError):
    """A user-setup problem of a deployment (a dirty tree, too many bytes, an unknown
    version, nothing to roll back to): one line on the CLI, exit 2."""
