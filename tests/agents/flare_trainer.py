import argparse
import logging

from peerflow.agents import RC, AgentClosed, FlareAgentWithCellPipe, MetaKey, TaskResult

NUMPY_KEY = "numpy_key"


def main():

    logging.basicConfig()
    logging.getLogger().setLevel(logging.INFO)

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", "-w", type=str, help="workspace folder", required=False, default=".")
    parser.add_argument("--site_name", "-s", type=str, help="flare site name", required=True)
    parser.add_argument("--agent_id", "-a", type=str, help="agent id", required=True)

    args = parser.parse_args()

    agent = FlareAgentWithCellPipe(
        root_url="grpc://server:8002",
        flare_site_name=args.site_name,
        agent_id=args.agent_id,
        workspace_dir=args.workspace,
        secure_mode=True,
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
        print(f"result submitted: {submitted}")

    agent.stop()


def train(model):
    if model.get("fail"):  # asked to fail: the job must abort, naming this agent
        return RC.EXECUTION_EXCEPTION, {}, "asked to fail"
    weights = model[NUMPY_KEY]
    return RC.OK, {MetaKey.NUM_STEPS_CURRENT_ROUND: len(weights)}, {NUMPY_KEY: weights + 1}

if __name__ == "__main__":
    main()
