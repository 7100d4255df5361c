import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from config.startup import refusal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# An exception, not SystemExit: gunicorn stops for good when a worker fails to boot with one,
# but would start new workers over and over after each SystemExit.
if why := refusal("The web process"):
    raise ImproperlyConfigured(why)
