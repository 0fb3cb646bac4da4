"""The Connic runtime: what makes a project written for Connic run unchanged on Ferry.

    runtime.py      connic.tools made real: stateless dispatchers, the run bound per task
    services.py     the backends (stores, trigger, search) and one run's predefined tools
    documents.py    db_*; filters.py their JSON filters
    knowledge.py    retrieval_* and the knowledge aliases; files.py file_*
    web_search.py   web_search behind the provider of ferry.yaml
    trigger.py      trigger_agent, and the seam (`AgentTrigger`) a worker fills with Kafka
    middleware.py   before / after / cleanup around a run; hooks.py around a tool call
    guardrails.py   input and output rules (pii.py, judge.py for the judged kinds)
    sessions.py     a conversation kept across runs per session key
    mcp_tools.py    an agent's MCP servers' tools; discovery.py its discoverable tools
    user_code.py    calling a project's sync or async functions as Connic does

The engine calls this layer (app/engine/connic_steps.py orders the steps around a run).
`runtime.py` and `pii.py` are also imported by the project loader (to install the
dispatchers before any project module is imported, to check PII entity names), so they
import nothing of Ferry above `contracts`. See docs/connic.md.
"""
