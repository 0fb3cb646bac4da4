"""The Connic runtime: what makes a project written for Connic run unchanged on Ferry.

    runtime.py     connic.tools made real: stateless dispatchers, the run bound per task
    services.py    the backends (document store, agent trigger) and one run's tools
    documents.py   db_* semantics; filters.py their JSON filters
    trigger.py     trigger_agent, and the seam (`AgentTrigger`) a worker fills with Kafka
    middleware.py  before / after / cleanup around a run; hooks.py around a tool call
    user_code.py   calling a project's sync or async functions as Connic does

The engine calls this layer; `runtime.py` alone is also imported by the project loader
(to install the dispatchers before any project module is imported), so it imports nothing
of Ferry above `contracts`. See docs/connic.md.
"""
