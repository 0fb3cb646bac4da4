"""How long `load_project` takes on a 200-agent project (target: under 1 s).

    .venv/bin/python bench/bench_load_project.py [--agents 200] [--repeat 5]

The generated project looks like a large real one: agents spread over 10 folders with
their own `_defaults.yaml`, 20 tool modules of 5 functions each, every LLM agent using
3 tools (one conditional, one wildcard), 10 output schemas, tool agents and sequential
chains. Each repetition loads the project from scratch (fresh module namespace after a
touch of the tool files), the way a worker start or a hot reload does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app.project import load_project

FOLDERS = 10
MODULES = 20
FUNCS = 5
SCHEMAS = 10


def tool_module(index: int) -> str:
    functions = []
    for f in range(FUNCS):
        functions.append(
            f"def op_{index}_{f}(text: str, limit: int = 10, tags: list[str] | None = None, context: dict | None = None) -> dict:\n"
            f'    """Operation {f} of module {index}.\n\n    Args:\n        text: The input text.\n'
            f'        limit: At most this many results.\n    """\n    return {{"text": text}}\n'
        )
    return "\n\n".join(functions) + "\n\n\ndef record(payload: dict, context: dict) -> dict:\n    return payload\n"


def agent_yaml(i: int, agents: int) -> str:
    name = f"agent-{i:04d}"
    kind = i % 10
    header = f'version: "1.0"\nname: {name}\ndescription: Generated agent {i}\n'
    if kind == 8:
        return header + f"type: tool\ntool_name: mod_{i % MODULES}.record\n"
    if kind == 9:
        stages = [f"agent-{(i - k) % agents:04d}" for k in (3, 2, 1)]
        return header + "type: sequential\nagents:\n" + "".join(f"  - {s}\n" for s in stages)
    m1, m2 = i % MODULES, (i + 7) % MODULES
    return header + (
        "model: openai/gpt-4o-mini\n"
        f"system_prompt: |\n  You are agent {i}. Answer for {{customer}}.\n"
        "temperature: 0.3\n"
        "tools:\n"
        f"  - mod_{m1}.op_{m1}_0\n"
        f"  - mod_{m1}.op_{m1}_1: \"input.amount < 100 and context.tier == 'gold'\"\n"
        f"  - mod_{m2}.op_{m2}_*\n"
        f"output_schema: schema_{i % SCHEMAS}\n"
        "retry_options:\n  attempts: 4\n"
        "concurrency:\n  key: customer.id\n"
        "budget:\n  max_tokens: 50000\n"
    )


def generate(root: Path, agents: int) -> None:
    for folder in range(FOLDERS):
        d = root / "agents" / f"team{folder}"
        d.mkdir(parents=True)
        (d / "_defaults.yaml").write_text("retry_options:\n  max_delay: 20\ntimeout: 60\nmax_iterations: 12\n")
    (root / "agents" / "_defaults.yaml").write_text("tool_timeout: 30\non_timeout: partial\n")
    for i in range(agents):
        (root / "agents" / f"team{i % FOLDERS}" / f"agent-{i:04d}.yaml").write_text(agent_yaml(i, agents))
    (root / "tools").mkdir()
    for m in range(MODULES):
        (root / "tools" / f"mod_{m}.py").write_text(tool_module(m))
    (root / "schemas").mkdir()
    for s in range(SCHEMAS):
        (root / "schemas" / f"schema_{s}.json").write_text(
            '{"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "number"}},'
            ' "required": ["answer"]}'
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.agents)
        timings = []
        for run in range(args.repeat):
            # A new comment changes the tool digest, so modules are imported afresh each run.
            for module in (root / "tools").glob("*.py"):
                module.write_text(module.read_text() + f"# run {run}\n")
            start = time.perf_counter()
            project = load_project(root)
            timings.append(time.perf_counter() - start)
        assert len(project.agents) == args.agents
        tools = sum(len(project.tools_for(name)) for name in project.agents)
    print(f"agents={args.agents} files={len(project.file_hashes)} tools_resolved={tools} repeat={args.repeat}")
    print(
        f"load_project: median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
