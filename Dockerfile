# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ROLLCALL_VAR_DIR=/var/lib/rollcall

# gcc and the LDAP/SASL headers: python-ldap (LDAP sign-in) has no wheel and is built by pip.
# gettext: msgfmt compiles the translations (locale/) at build time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl gcc gettext libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
# The CPU build of torch: the default index would pull several GB of CUDA libraries.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY . .
# The static files are collected before the chown: the compose file's migrate service collects them
# again, as this user, into the volume the proxy serves.
RUN useradd --system --home /var/lib/rollcall --uid 1000 rollcall \
    && mkdir -p /var/lib/rollcall/media /var/lib/rollcall/indexes /var/lib/rollcall/models \
    && SECRET_KEY=collectstatic-only-key-not-used-at-runtime-000000 python manage.py collectstatic --noinput \
    && SECRET_KEY=collectstatic-only-key-not-used-at-runtime-000000 python manage.py compilemessages -v 0 \
    && chown -R rollcall /var/lib/rollcall

USER rollcall
EXPOSE 8000
# Meant to run behind a buffering proxy (docker-compose.yml's nginx): on its own, slow clients hold
# its threads. The worker model is measured in the README's production section.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", \
     "--workers", "2", "--threads", "4", "--timeout", "60", "--worker-tmp-dir", "/dev/shm"]
