"""The generated references: docs/api.md from the app's OpenAPI document, docs/configuration.md
from `Settings`. `python -m tools.docs_render` writes both; `tests/unit/test_api_docs.py` fails
when a committed file differs from a fresh render."""
