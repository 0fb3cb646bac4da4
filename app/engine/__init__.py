"""The executor: runs one agent for one request, with retries, timeouts, budgets, tools.

    engine = Engine(load_project("."), settings=EngineSettings())
    result = await engine.run(RunRequest.new("invoice-extractor", {...}), on_span=print)
    await engine.aclose()

The model is behind `LLMClient` (one `complete()`); `Engine(llm=...)` takes any client,
`app.engine.testing` has in-process fakes for tests. Knows nothing of Kafka. See docs/engine.md.
"""

from app.engine.clock import Clock, FakeClock, SystemClock
from app.engine.engine import Engine
from app.engine.model import LLMClient, LLMMiddleware, LLMRequest, LLMResponse, LLMUsage, ToolCall
from app.engine.settings import EngineSettings
from app.engine.stage import execute_agent, next_stage_input

__all__ = [
    "Clock",
    "Engine",
    "EngineSettings",
    "FakeClock",
    "LLMClient",
    "LLMMiddleware",
    "LLMRequest",
    "LLMResponse",
    "LLMUsage",
    "SystemClock",
    "ToolCall",
    "execute_agent",
    "next_stage_input",
]
