"""Every agent a Kafka stream processor: topics, workers, scheduling, delivery. See docs/streams.md.

plan_topics / apply_topics     which topics a project needs; create and check them
Worker(project, settings)      a faust app running the project's agents (start/stop, async with)
Submitter / ResultWatcher      produce run requests; wait for their results
ReplyInbox                     an API instance's reply topic: a chat's streamed answers
"""

from app.streams.client import ResultWatcher, Submitter
from app.streams.messages import DeadLetter
from app.streams.naming import TopicNames
from app.streams.reply_inbox import ReplyInbox
from app.streams.settings import StreamSettings, default_broker
from app.streams.topic_admin import ApplyReport, TopicConflict, TopicConflictError, apply_topics
from app.streams.topic_plan import PlannedTopic, plan_topics
from app.streams.worker import Worker

__all__ = [
    "ApplyReport",
    "DeadLetter",
    "PlannedTopic",
    "ReplyInbox",
    "ResultWatcher",
    "StreamSettings",
    "Submitter",
    "TopicConflict",
    "TopicConflictError",
    "TopicNames",
    "Worker",
    "apply_topics",
    "default_broker",
    "plan_topics",
]
