from __future__ import annotations

import subprocess
import sys

import peerflow
import peerflow.actors
import peerflow.algorithms
import peerflow.transport


def test_the_facade_exports_the_contract_names() -> None:
    assert set(peerflow.__all__) >= {"Config", "Network", "Node", "Neighbor", "LocalConfig",
                                     "RunResult", "run", "simulate", "__version__"}
    assert set(peerflow.actors.__all__) >= {"Actor", "Controller", "DistOptController",
                                            "SyncAlgorithmExecutor"}
    assert "ConsensusExecutor" in peerflow.algorithms.__all__


def test_every_exported_name_exists() -> None:
    for module in (peerflow, peerflow.actors, peerflow.algorithms, peerflow.transport):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_importing_the_transport_does_not_import_torch() -> None:
    code = "import sys, peerflow.transport; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "False"
