"""Add a finished training run to the weights shipped inside srlib (maintainers' tool).

    python scripts/ship_weights.py NAME RUN_DIR --command "python -m srlib train ..." \
        --data T91 --cpu-minutes 60

Copies RUN_DIR/last.pt (the network only) to srlib/weights/NAME.pt and records, in
srlib/weights/index.json, the command, data, iterations, CPU time and the Set5 PSNR
measured now with srlib's protocol. Run it with SRLIB_DATA pointing at the benchmarks.
"""

import argparse
import json
from pathlib import Path

from srlib.pretrained import ship

p = argparse.ArgumentParser()
p.add_argument("name")
p.add_argument("run", type=Path)
p.add_argument("--command", required=True)
p.add_argument("--data", required=True)
p.add_argument("--cpu-minutes", type=float, required=True, help="training minutes (the checkpoint's own record wins)")
p.add_argument("--device", default="2-core CPU", help="where it trained, e.g. 'NVIDIA H100'")
a = p.parse_args()
print(json.dumps(ship(a.run / "last.pt", a.name, a.command, a.cpu_minutes, a.data, a.device), indent=1))
