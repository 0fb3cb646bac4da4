"""The direct path for the OpenAI chat-completions protocol, behind the engine's model interface.

OpenAI, Azure OpenAI and every server or provider that speaks the protocol (vLLM,
Ollama, Groq, DeepSeek, Mistral, OpenRouter, Gemini's OpenAI endpoint, the LLM
simulator…) without litellm in between: one aiohttp POST per call, its own error
translation (`errors.py`), prices from litellm's price file read as data
(`app.engine.price_map`). `app.engine.model_router` decides which models take it.
"""

from app.engine.openai_compat.client import OpenAICompatClient
from app.engine.openai_compat.endpoints import Endpoint, EndpointTable

__all__ = ["Endpoint", "EndpointTable", "OpenAICompatClient"]
