"""Time- and storage-driven run triggers: cron schedules and S3 objects (connectors/README.md)."""

from app.connectors.triggers.s3_events import created_objects
from app.connectors.triggers.s3_objects import Bucket, ObjectRefused, StoredObject
from app.connectors.triggers.service import Triggers, trigger_specs, triggers_group

__all__ = ["Bucket", "ObjectRefused", "StoredObject", "Triggers", "created_objects", "trigger_specs", "triggers_group"]
