from __future__ import annotations

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

if os.environ.get("ROLLCALL_WORKER_AS_ROOT", "").lower() in {"1", "true", "yes", "on"}:
    # Celery warns at every start that a worker running as root could do anything on the machine
    # (it refuses outright only with pickle, which Rollcall never accepts). `./rollcall up` run as
    # root says so once in its own words and sets this; production runs the worker as its own user.
    warnings.filterwarnings("ignore", category=SecurityWarning)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("rollcall")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
