"""What a worker tells a live caller about one run, on the caller's reply topic.

A chat socket waits on the API instance that holds it; the run happens in some worker.
The worker produces these events, keyed by run id, to the topic the request names in
`reply_to` (DESIGN: one reply topic per API instance, so no instance reads another
tenant's text). In order, for one run:

- `text`: the next piece of the answer, as the model writes it (only with `stream`);
- `reset`: forget the text sent so far: a new model step or attempt starts over (the
  previous step called tools, failed mid-answer, or wrote output that failed validation);
- `result`: the run ended; the same `RunResult` that goes to `runs.results`.

Text events are a view, not a record: one may be lost in a broker failover, and the
result is always authoritative.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.contracts.runs import RunResult


class ReplyEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    run_id: str
    seq: int  # 0, 1, 2… per run: a caller can drop a duplicate or notice a gap
    kind: Literal["text", "reset", "result"]
    text: str | None = None
    result: RunResult | None = None
