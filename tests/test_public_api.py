from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import peerflow
import peerflow.actors
import peerflow.agents
import peerflow.algorithms
import peerflow.transport


def test_the_facade_exports_the_contract_names() -> None:
    assert set(peerflow.__all__) >= {"Config", "Network", "Node", "Neighbor", "LocalConfig",
                                     "RunResult", "run", "simulate", "__version__"}
    assert set(peerflow.actors.__all__) >= {"Actor", "Controller", "DistOptController",
                                            "SyncAlgorithmExecutor"}
    assert "ConsensusExecutor" in peerflow.algorithms.__all__
    assert {"Schedule", "ScheduledMailbox", "LocalPhase"} <= set(peerflow.actors.__all__)
    assert {"MixingSchedule", "exponential_one_peer", "random_matching", "cycle_of_graphs",
            "nids", "nids_reference", "NIDSExecutor"} <= set(peerflow.algorithms.__all__)
    assert "Schedule" in peerflow.__all__
    assert set(peerflow.actors.__all__) >= {"AsyncAlgorithmExecutor", "LatestMailbox", "Latest",
                                            "TickSchedule"}
    assert set(peerflow.algorithms.__all__) >= {"GossipExecutor", "AsyncPushSumExecutor",
                                                "ADPSGDExecutor", "GradientPushExecutor",
                                                "AsyncTunables"}
    assert set(peerflow.algorithms.__all__) >= {"ENGINES", "batched_obstacle", "check_engine",
                                                "fallback_line", "simulate_batched"}
    assert "prepare_config" in peerflow.actors.__all__
    assert set(peerflow.agents.__all__) >= {"FlareAgent", "FlareAgentWithCellPipe", "Task",
                                            "TaskResult", "RC", "MetaKey", "AgentClosed",
                                            "CallStateError", "AgentServer", "TaskExchanger"}


def test_every_exported_name_exists() -> None:
    for module in (peerflow, peerflow.actors, peerflow.agents, peerflow.algorithms,
                   peerflow.transport):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_importing_the_transport_does_not_import_torch() -> None:
    code = "import sys, peerflow.transport; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "False"


def without_torch(code: str) -> str:
    """Run ``code`` in a fresh interpreter that fails if anything imports torch; its stdout."""
    guard = ("import sys\nclass NoTorch:\n    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'torch' or name.startswith('torch.'):\n"
             "            raise ImportError('torch imported')\n"
             "sys.meta_path.insert(0, NoTorch())\n")
    done = subprocess.run([sys.executable, "-c", guard + code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_importing_peerflow_and_its_algorithms_does_not_import_torch() -> None:
    out = without_torch("import peerflow, peerflow.algorithms as a\n"
                        "print(a.ConsensusExecutor.__name__, 'torch' in sys.modules)")
    assert out.split() == ["ConsensusExecutor", "False"]


def test_the_jobs_layer_exports_only_names_it_has_and_loads_without_torch() -> None:
    out = without_torch("import peerflow.jobs as j\n"
                        "print(all(hasattr(j, name) for name in j.__all__), len(j.ALGORITHMS))")
    assert out.split() == ["True", "16"]


def test_the_torch_using_names_load_on_first_use() -> None:
    lazy = set(peerflow.algorithms._LAZY_MODULES)
    assert lazy <= set(peerflow.algorithms.__all__) and lazy <= set(dir(peerflow.algorithms))
    assert peerflow.algorithms.GTExecutor.__module__ == "peerflow.algorithms._executors"


def test_the_consensus_path_of_the_cli_never_imports_torch(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('algorithm = "consensus"\niterations = 5\n[network]\nnodes = 3\n')
    out = without_torch(f"""
import peerflow
from pathlib import Path
from peerflow.cli import main
from peerflow.cli._jobs import Job, build_executors, load_job, report_job
assert main(["--help"]) == 0 and main(["simulate", "--help"]) == 0
assert main(["simulate", "consensus", "-n", "3", "-i", "5", "--out", {str(tmp_path)!r},
             "--force"]) == 0
assert main(["simulate", "gossip", "-n", "3", "-i", "5", "--out", {str(tmp_path)!r},
             "--force"]) == 0
job = load_job(Path({str(job)!r}))                       # the controller
executors = build_executors(Job.from_spec(job.spec()))  # a node
report_job(peerflow.simulate(job.config, executors), job, Path({str(tmp_path)!r}))
""")
    for command in ("simulate", "controller", "node", "status", "provision", "topology",
                    "consensus", "dgd", "gt", "gtadam", "extra", "nids", "subgradient-push",
                    "push-diging", "push-sum", "gossip", "async-push-sum", "ad-psgd"):
        assert f" {command} " in out, command


def test_a_run_result_repr_counts_the_node_results_instead_of_printing_them() -> None:
    results = {f"n{i}": {"value_history": [0.5] * 1000} for i in range(1000)}
    result = peerflow.RunResult("completed", results=results, timings={"total": 1.5})
    text = repr(result)
    assert text.startswith("RunResult(status='completed', reason=None")
    assert "results=<1000 nodes>" in text and "'total': 1.5" in text and len(text) < 300


def test_the_agent_link_and_its_handshake_are_public() -> None:
    assert set(peerflow.agents.__all__) >= {"AgentKitError", "AgentTls", "trainer_tls_context"}
    assert set(peerflow.transport.__all__) >= {"Hello", "Welcome", "Gate", "admit",
                                               "HandshakeError", "StartupKit",
                                               "certificate_subject"}


def test_compression_is_public() -> None:
    assert set(peerflow.transport.__all__) >= {"SparseTensor", "QuantizedTensor"}
    assert set(peerflow.algorithms.__all__) >= {"ChocoSGDExecutor", "CompressTunables", "choco_sgd",
                                                "choco_gossip", "parse_compressor",
                                                "parse_compress_spec", "error_feedback"}
    assert "memory_transport" in peerflow.actors.__all__
