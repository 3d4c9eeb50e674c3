"""The baseline for bench/first_call.py: the console's WSGI application without the SDK warm-up
(what console/wsgi.py was before it started one), so the first call to Composio pays the import."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()
