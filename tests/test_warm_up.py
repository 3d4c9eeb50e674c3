"""No cold first call (issue 15): a web worker imports the Composio SDK in the background right
after it loads the application (console/wsgi.py, console/asgi.py), so the first "Check
connections" does not pay for the import, while loading the application does not wait for it and
`manage.py` commands never start it (the foundation bar: tests/test_models.py,
test_check_and_migrate_do_not_import_the_composio_sdk)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import PROJECT_ROOT

PROBE = """
import json, os, sys, time
os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings'
os.environ['DATABASE_URL'] = 'sqlite:///{db}'
os.environ['COMPOSIO_API_KEY'] = ''
started = time.monotonic()
import {module}
loaded = time.monotonic() - started
from sessions_app.tool_router import health
warm = [health.warm_up_thread] if health.warm_up_thread else []
for thread in warm:
    thread.join(300)
from sessions_app.composio import seam
print(json.dumps({{
    'threads': len(warm),
    'daemon': all(t.daemon for t in warm),
    'imported': 'composio' in sys.modules,
    'client': seam._client is not None,
    'loaded_s': loaded,
}}))
"""


@pytest.mark.parametrize("module", ["console.wsgi", "console.asgi"])
def test_the_web_application_warms_the_sdk_up_in_a_background_thread(
    module: str, tmp_path: Path
) -> None:
    code = PROBE.format(db=tmp_path / "x.sqlite3", module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=400
    )
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["threads"] == 1 and probe["daemon"], probe
    # Once the thread is done the SDK is imported and the client built: no request pays for it.
    assert probe["imported"] and probe["client"], probe
