#!/usr/bin/env bash
# Install trio_asyncio into .venv and run the demo (both loops, end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m trio_asyncio --demo
