import subprocess
import sys

import trio_asyncio


def test_version_is_a_string() -> None:
    assert isinstance(trio_asyncio.__version__, str)
    assert trio_asyncio.__version__.count(".") >= 2


def test_import_emits_no_warnings() -> None:
    subprocess.run([sys.executable, "-W", "error", "-c", "import trio_asyncio"], check=True)
