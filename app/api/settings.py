"""What an operator tunes for `ferry api`: limits the HTTP edge enforces before Kafka sees anything."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="A larger request body is refused (413).")
    rate_per_second: float = Field(default=20.0, gt=0, description="Requests per second one API key may make.")
    rate_burst: int = Field(default=40, ge=1, description="Requests one key may make at once after a quiet spell.")
    max_wait_seconds: float = Field(default=60.0, ge=0, description="Cap of `?wait=N` on a POST.")
    wait_poll_seconds: float = Field(default=0.1, gt=0, description="How often `?wait` looks at the run history.")
    page_size_max: int = Field(default=200, ge=1, description="Most runs one `GET /v1/runs` page holds.")
    chat_idle_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="A chat socket with no message for this long is closed."
    )
    chat_max_messages: int = Field(default=100, ge=1, description="Messages one chat socket may send.")
    chat_history_turns: int = Field(
        default=20, ge=0, description="Earlier exchanges (question and answer) each chat message carries."
    )
    chat_reply_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Longest a chat message waits for its run's answer."
    )
