"""The README's curl examples work verbatim against the started service."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def readme_curl_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n# discovery\n(.*?)```", text, re.S)
    assert block, "README lost its curl example block"
    lines = [line for line in block.group(1).splitlines() if not line.startswith("#")]
    return [c.strip() for c in " ".join(lines).replace("\\ ", " ").split("curl ") if c.strip()]


def test_readme_curl_examples_work_verbatim(live_service: Any) -> None:
    commands = readme_curl_commands()
    assert len(commands) == 2
    outputs = []
    for command in commands:
        argv = ["curl", *shlex.split(command.replace("http://127.0.0.1:8080", live_service.base_url))]
        result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert '"id":"spine-order-select"' in outputs[0].replace(" ", "")
    assert "Kyphoplasty, thoracic: usually appropriate" in outputs[1]
