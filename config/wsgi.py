import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Each gunicorn worker loads the models and open courses' indexes once, beside serving requests.
from attendance.courses.warmup import warm_up_in_background  # noqa: E402

warm_up_in_background()
