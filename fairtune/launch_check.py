"""Does the launch fit the machine? A GPU accelerate config on a machine without GPUs is refused at start-up.

`accelerate launch --config_file recipes/accelerate_configs/ddp.yaml` on a CPU-only machine starts 8 processes in
bf16 that each crawl (94 s per step was measured) without any error. Two checks:

- `check_launch(use_cpu=...)`, called at the start of `fairtune train`: reads what `accelerate launch` (or torchrun)
  sets in every process it starts (`WORLD_SIZE`, `LOCAL_WORLD_SIZE`, `ACCELERATE_MIXED_PRECISION`,
  `ACCELERATE_USE_CPU`, `ACCELERATE_USE_DEEPSPEED`, `ACCELERATE_USE_FSDP`) and the GPUs torch sees.
- `launch_config_problems(path)` / `fairtune check-launch CONFIG`: the same rules on an accelerate config file,
  before launching.

Both name `recipes/accelerate_configs/cpu_ddp.yaml` (two CPU processes, no mixed precision) as the CPU choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fairtune.errors import FairtuneError

CPU_CONFIG = "recipes/accelerate_configs/cpu_ddp.yaml"
_TRUE = ("1", "true", "yes", "on")


def _gpu_count() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def fit_problems(
    *,
    processes: int,
    mixed_precision: str,
    distributed_type: str,
    use_cpu: bool,
    gpus: int,
    cpus: int,
    bf16_ok: bool = True,
) -> list[str]:
    """What does not fit: processes per machine vs GPUs (or CPU cores), mixed precision and sharding on CPU."""
    problems: list[str] = []
    mixed_precision = (mixed_precision or "no").lower()
    sharded = distributed_type.upper() in ("DEEPSPEED", "FSDP")
    if gpus == 0 and not use_cpu:
        if processes > 1 or sharded:
            problems.append(
                f"it starts {processes} GPU process(es) ({distributed_type or 'MULTI_GPU'}) but this machine has no "
                "GPU: each would train on the CPU alone, slowly"
            )
        if mixed_precision in ("bf16", "fp16", "fp8"):
            problems.append(
                f"mixed precision {mixed_precision} needs a GPU here (CPU autocast is slow or unsupported)"
            )
    elif gpus == 0 and use_cpu:
        if sharded:
            problems.append(f"{distributed_type} shards over GPUs and this machine has none")
        if mixed_precision in ("fp16", "fp8"):
            problems.append(f"mixed precision {mixed_precision} is not available on CPU")
        if processes > 4 * max(cpus, 1):  # a few processes per core only slow down; many more are a mistake
            problems.append(f"it starts {processes} CPU processes on {cpus} cores")
    else:
        if not use_cpu and processes > gpus:
            problems.append(f"it starts {processes} processes on this machine but only {gpus} GPU(s) are visible")
        if mixed_precision == "bf16" and not bf16_ok:
            problems.append("mixed precision bf16 is not supported by this GPU (use fp16)")
    return problems


def _message(source: str, problems: list[str], gpus: int) -> str:
    if gpus == 0:
        fix = (
            f"use `accelerate launch --config_file {CPU_CONFIG} -m fairtune train RECIPE.yaml --use_cpu true`, or run "
            "`fairtune train` without accelerate"
        )
    else:
        fix = f"set num_processes to at most {gpus} (`accelerate launch --num_processes {gpus} ...`)"
    return f"{source} does not fit this machine: {'; '.join(problems)}. Fix: {fix}."


def check_launch(
    use_cpu: bool = False,
    environ: Mapping[str, str] | None = None,
    gpus: int | None = None,
    cpus: int | None = None,
    bf16_ok: bool | None = None,
) -> None:
    """Raise `FairtuneError` when this process was launched with a config the machine cannot run well.

    Does nothing outside a multi-process launch without accelerate settings (a plain `fairtune train`). `gpus`,
    `cpus` and `bf16_ok` describe the machine (default: what torch and the OS report).
    """
    env = os.environ if environ is None else environ
    launched = any(k.startswith("ACCELERATE_") for k in env) or int(env.get("WORLD_SIZE", "1") or 1) > 1
    if not launched:
        return
    processes = int(env.get("LOCAL_WORLD_SIZE") or env.get("WORLD_SIZE") or 1)
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in _TRUE:
        distributed = "DEEPSPEED"
    elif env.get("ACCELERATE_USE_FSDP", "").lower() in _TRUE:
        distributed = "FSDP"
    else:
        distributed = "MULTI_GPU" if processes > 1 else ""
    cpu = use_cpu or env.get("ACCELERATE_USE_CPU", "").lower() in _TRUE
    if gpus is None:
        gpus = _gpu_count()
        bf16_ok = _bf16_supported() if gpus and bf16_ok is None else bf16_ok
    problems = fit_problems(
        processes=processes,
        mixed_precision=env.get("ACCELERATE_MIXED_PRECISION", "no"),
        distributed_type=distributed,
        use_cpu=cpu,
        gpus=gpus,
        cpus=(os.cpu_count() or 1) if cpus is None else cpus,
        bf16_ok=True if bf16_ok is None else bf16_ok,
    )
    if problems:
        raise FairtuneError(_message("the accelerate launch", problems, gpus))


def read_launch_config(path: str | Path) -> dict[str, Any]:
    """An accelerate config file (YAML or JSON) as a dict."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FairtuneError(f"accelerate config {str(path)!r} does not exist; see recipes/accelerate_configs/.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise FairtuneError(f"accelerate config {path}: not valid YAML ({' '.join(str(err).split())}).") from None
    if not isinstance(data, dict):
        raise FairtuneError(f"accelerate config {path}: expected a mapping of accelerate settings.")
    return data


def launch_config_problems(
    path: str | Path,
    gpus: int | None = None,
    cpus: int | None = None,
    use_cpu: bool = False,
    bf16_ok: bool | None = None,
) -> list[str]:
    """What in an accelerate config file does not fit this machine (empty when it fits)."""
    cfg = read_launch_config(path)
    if gpus is None:
        gpus = _gpu_count()
        bf16_ok = _bf16_supported() if gpus and bf16_ok is None else bf16_ok
    machines = int(cfg.get("num_machines", 1) or 1)
    processes = int(cfg.get("num_processes", 1) or 1) // max(machines, 1)
    return fit_problems(
        processes=max(processes, 1),
        mixed_precision=str(cfg.get("mixed_precision", "no")),
        distributed_type=str(cfg.get("distributed_type", "NO")),
        use_cpu=bool(cfg.get("use_cpu", False))
        or use_cpu
        or str(cfg.get("distributed_type", "")).upper() == "MULTI_CPU",
        gpus=gpus,
        cpus=(os.cpu_count() or 1) if cpus is None else cpus,
        bf16_ok=True if bf16_ok is None else bf16_ok,
    )


def check_launch_config(
    path: str | Path,
    gpus: int | None = None,
    cpus: int | None = None,
    use_cpu: bool = False,
    bf16_ok: bool | None = None,
) -> None:
    """Raise `FairtuneError` when the accelerate config file does not fit this machine."""
    if gpus is None:
        gpus = _gpu_count()
        bf16_ok = _bf16_supported() if gpus and bf16_ok is None else bf16_ok
    problems = launch_config_problems(path, gpus=gpus, cpus=cpus, use_cpu=use_cpu, bf16_ok=bf16_ok)
    if problems:
        raise FairtuneError(_message(f"accelerate config {path}", problems, gpus))


__all__ = ["CPU_CONFIG", "check_launch", "check_launch_config", "fit_problems", "launch_config_problems"]
