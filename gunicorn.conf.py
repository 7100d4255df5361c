# Read by gunicorn from the working directory. Its own log lines follow LOG_FORMAT, like the
# application's (config/log_format.py).
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger_class = "config.log_format.GunicornLogger"
