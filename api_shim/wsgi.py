"""`gunicorn api_shim.wsgi:app`"""

from api_shim import create_app

app = create_app()
