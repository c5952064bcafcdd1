# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ROLLCALL_VAR_DIR=/var/lib/rollcall

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
# The CPU build of torch: the default index would pull several GB of CUDA libraries.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY . .
RUN useradd --system --home /var/lib/rollcall --uid 1000 rollcall \
    && mkdir -p /var/lib/rollcall/media /var/lib/rollcall/indexes /var/lib/rollcall/models \
    && chown -R rollcall /var/lib/rollcall \
    && SECRET_KEY=collectstatic-only-key-not-used-at-runtime-000000 python manage.py collectstatic --noinput

USER rollcall
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "60"]
