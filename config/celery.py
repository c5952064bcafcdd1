from __future__ import annotations

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import after_task_publish

if os.environ.get("ROLLCALL_WORKER_AS_ROOT", "").lower() in {"1", "true", "yes", "on"}:
    # Celery warns at every start that a worker running as root could do anything on the machine
    # (it refuses outright only with pickle, which Rollcall never accepts). `./rollcall up` run as
    # root says so once in its own words and sets this; production runs the worker as its own user.
    warnings.filterwarnings("ignore", category=SecurityWarning)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rollcall")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_task_publish.connect(weak=False)
def _beat_heartbeat_sent(sender: object = None, **_: object) -> None:
    """Beat's heartbeat is noted as beat sends it; every other task is ignored (the import waits
    for this first one: the app module loads before Django's settings)."""
    if sender == "attendance.beat_heartbeat":
        from attendance.platform.health import beat_heartbeat_record

        beat_heartbeat_record()
