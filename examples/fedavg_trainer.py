"""A third-party trainer for federated averaging: NVFlare's documented FlareAgent trainer.

    peerflow simulate fedavg --agent-command \\
        "python examples/fedavg_trainer.py --site_name {site} --agent_id {agent_id}"

starts one copy of this script per site; {site} and {agent_id} become the site's
name and its agent id. ``main`` is NVFlare's integration example as documented,
with peerflow's imports, three options for the data, and ``secure_mode=False``
(``True`` needs the site's ``startup/`` in ``--workspace``; under a secure launcher,
``--agent-tls KITS``, the link is mutual TLS either way). The trainer loops: get the
"train" task, train the global weights it holds (name -> numpy array) on this
site's data, submit the result, until ``get_task`` raises ``AgentClosed`` (the job
is over). ``train`` returns (rc, meta, new weights), meta holding
``MetaKey.NUM_STEPS_CURRENT_ROUND``, the steps the site took, by which the
controller weighs its result; a return code other than RC.OK aborts the job
naming this site.

The site's address comes from the environment its launcher sets (``root_url`` is
not used then). To reproduce the in-process sites of ``simulate fedavg`` exactly,
this trains the same built-in problem (two moons; site-N trains part N of the
data) with the same defaults; a real trainer would load its own model and data.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from typing import Any

import torch

from peerflow.agents import RC, AgentClosed, FlareAgentWithCellPipe, TaskResult
from peerflow.algorithms import PROBLEMS, ProblemTrainer


def main() -> None:

    logging.basicConfig()
    logging.getLogger().setLevel(logging.INFO)
    torch.set_num_threads(1)  # one core per trainer process

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", "-w", type=str, help="workspace folder", required=False, default=".")
    parser.add_argument("--site_name", "-s", type=str, help="flare site name", required=True)
    parser.add_argument("--agent_id", "-a", type=str, help="agent id", required=True)
    parser.add_argument("--local_epochs", type=int, default=5, help="epochs per round")
    parser.add_argument("--stepsize", type=float, default=0.1, help="SGD step size")
    parser.add_argument("--seed", type=int, default=0, help="the data's seed")

    args = parser.parse_args()
    train = site_train(args.site_name, args.local_epochs, args.stepsize, args.seed)

    agent = FlareAgentWithCellPipe(
        root_url="grpc://server:8002",
        flare_site_name=args.site_name,
        agent_id=args.agent_id,
        workspace_dir=args.workspace,
        secure_mode=False,
        submit_result_timeout=2.0,
        heartbeat_timeout=120.0,
    )

    agent.start()

    while True:
        print("getting task ...")
        try:
            task = agent.get_task()
        except AgentClosed:
            print("agent closed - exit")
            break

        print(f"got task: {task}")
        rc, meta, result = train(task.data) # peform train task
        submitted = agent.submit_result(TaskResult(data=result, meta=meta, return_code=rc))
        print(f"result submitted: {submitted} ({meta})")

    agent.stop()


def site_train(site: str, local_epochs: int, stepsize: float,
               seed: int) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any], Any]]:
    """This site's ``train``: site-N trains part N of the two-moons data."""
    number = re.fullmatch(r".*?(\d+)", site)
    if number is None or int(number.group(1)) < 1:
        raise SystemExit(f"site {site!r}: this example needs site names ending in 1, 2, ...")
    index = int(number.group(1)) - 1
    trainer = ProblemTrainer(PROBLEMS["two-moons"](index + 1, seed), index,
                             local_epochs=local_epochs, stepsize=stepsize)

    def train(model: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
        """Train the global model on this site's data: (rc, meta, new weights)."""
        try:
            return trainer(model, {})  # meta: {NUM_STEPS_CURRENT_ROUND, train_loss}
        except (KeyError, RuntimeError, ValueError) as exc:  # weights of another model
            print(f"cannot train these weights: {exc!r}")
            return RC.BAD_TASK_DATA, {}, None

    return train


if __name__ == "__main__":
    main()
