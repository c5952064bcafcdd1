"""Load the recognition models and the open sessions' course indexes when a web worker starts.

Called from config/wsgi.py only (never at import time, in settings or in management commands), in a
background thread: the worker answers at once, and the first check-in does not pay for the load.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

logger = logging.getLogger(__name__)


def warm_up() -> None:
    from django.conf import settings
    from django.db import connection

    from attendance import ml
    from attendance.courses.indexes import course_index_get
    from attendance.models import Course, Session

    started = time.perf_counter()
    try:
        embedder = ml.embedder()
        # Weights load lazily, on the first detection and the first encoding.
        ml.detector().detect(np.zeros((240, 320, 3), dtype=np.uint8))
        embedder.encode([np.zeros((embedder.crop_size, embedder.crop_size, 3), dtype=np.uint8)])
        if {settings.ROLLCALL_LIVENESS_LECTURER, settings.ROLLCALL_LIVENESS_KIOSK} != {"off"} or (
            Course.objects.exclude(liveness__in=["", "off"]).exists()
        ):
            ml.liveness().load()  # both MiniFASNet models
        courses = Course.objects.filter(sessions__status=Session.Status.OPEN).distinct()
        for course in courses:
            course_index_get(course=course)
        logger.info("recognition warmed up in %.1f s", time.perf_counter() - started)
    except Exception as exc:  # the first check-in will load them, and report the error there
        logger.warning("recognition warm-up failed (%s); models load on the first check-in instead", exc)
    finally:
        connection.close()  # this thread's own connection: nothing else will close it


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=warm_up, name="rollcall-warm-up", daemon=True)
    thread.start()
    return thread
