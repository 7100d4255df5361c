FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml ./
COPY config ./config
COPY rollout ./rollout
COPY monitoring ./monitoring
COPY metrics ./metrics
COPY integrations ./integrations
COPY edge_standin ./edge_standin
COPY templates ./templates
COPY static ./static
COPY manage.py gunicorn.conf.py ./
# Static files where the running web process serves them from (whitenoise, STATIC_ROOT under
# var/): the CSS and the htmx script the live panels need.
RUN pip install . && python manage.py collectstatic --noinput
RUN useradd --system --home /app rollout && mkdir -p /app/var && chown rollout /app/var
USER rollout
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
