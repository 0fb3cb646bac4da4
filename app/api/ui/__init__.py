"""The dashboard served by `ferry api` under /ui (docs/dashboard.md)."""

from app.api.ui.router import ui_router

__all__ = ["ui_router"]
