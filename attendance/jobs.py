"""How services hand work to a Celery worker: by task name, so no service imports tasks.py.

tasks.py imports the services it calls; a service that schedules a task sends its name through
here, which keeps the import graph one-way (tasks -> services -> jobs).
"""

from __future__ import annotations

from celery import current_app

ENROLMENT_PROCESS = "attendance.enrolment_process"
COURSE_INDEX_REBUILD = "attendance.course_index_rebuild"
ROSTER_IMPORT_JOB = "attendance.roster_import_job"


def send(task_name: str, *args: object) -> None:
    """Queue a task by name. Raises the broker's error when it cannot be reached.

    ignore_result: nobody waits on these results (progress lives on the rows), and asking for one
    makes Celery subscribe to the result backend first, which with Redis down retries for about
    20 s and then leaves this process's result consumer broken until a restart.
    """
    current_app.send_task(task_name, args=args, ignore_result=True)
