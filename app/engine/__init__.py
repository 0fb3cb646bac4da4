"""The executor: runs one agent for one request, with retries, timeouts, budgets, tools.

    engine = Engine(load_project("."), settings=EngineSettings())
    result = await engine.run(RunRequest.new("invoice-extractor", {...}), on_span=print)
    await engine.aclose()

Knows nothing of Kafka. See docs/engine.md.
"""

from app.engine.clock import Clock, FakeClock, SystemClock
from app.engine.engine import Engine
from app.engine.settings import EngineSettings
from app.engine.stage import execute_agent, next_stage_input

__all__ = [
    "Clock",
    "Engine",
    "EngineSettings",
    "FakeClock",
    "SystemClock",
    "execute_agent",
    "next_stage_input",
]
