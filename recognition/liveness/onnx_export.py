"""A MiniFASNet file exported to ONNX for OpenCV's DNN module, in a child process.

Why a child: torch's ONNX exporter and the onnx package add about 90 MB to the resident memory of
the process that imports them, and every web worker scores liveness. The child builds the network
from the published file, exports it and exits; the parent reads the graph into OpenCV and checks its
scores against its own torch copy (``passive.PassiveLiveness``) before using it.

Run as ``python -m recognition.liveness.onnx_export ARCHITECTURE WEIGHTS OUT``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

EXPORT_TIMEOUT_S = 120  # the child imports torch (a few seconds) and exports two small networks
INPUT_SIZE = 80


def export_in_child(architecture: str, weights: Path, out: Path) -> None:
    """Write the ONNX graph of the MiniFASNet ``architecture`` ("v2" or "v1se") with ``weights`` to
    ``out``; raises RuntimeError with the child's last words when it could not."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "recognition.liveness.onnx_export", architecture, str(weights), str(out)]
    try:
        done = subprocess.run(  # noqa: S603  (this interpreter, this module, our own arguments)
            command, env=env, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"the export did not run ({exc})") from exc
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout or "").strip()[-800:]
        raise RuntimeError(f"the export failed (exit {done.returncode}): {tail}")


def export(architecture: str, weights: Path, out: Path) -> None:
    """The child's side: build, load and export (needs torch and the onnx package)."""
    import torch

    from . import minifasnet

    torch.set_num_threads(1)
    model = minifasnet.minifasnet_v2() if architecture == "v2" else minifasnet.minifasnet_v1se()
    minifasnet.load_state(model, torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    example = torch.zeros((1, 3, INPUT_SIZE, INPUT_SIZE))
    with warnings.catch_warnings():
        # torch 2.14 marks this exporter legacy; the parent checks the graph against torch.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), out, dynamo=False, input_names=["x"], output_names=["logits"],
                          opset_version=13, dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("v2", "v1se"):
        print("usage: python -m recognition.liveness.onnx_export v2|v1se WEIGHTS OUT", file=sys.stderr)
        return 2
    export(args[0], Path(args[1]), Path(args[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
