import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()

# Each web worker imports the Composio SDK in the background right after it starts, so no request
# pays for it (manage.py commands never load this module).
from sessions_app.tool_router.health import warm_up_in_background  # noqa: E402

warm_up_in_background()
