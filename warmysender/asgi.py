"""The ASGI application served by uvicorn (`warmysender web`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warmysender.settings")

application = get_asgi_application()
