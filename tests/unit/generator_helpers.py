"""Shared test helpers for the generator tests: write an env file with chosen values."""

from __future__ import annotations

from pathlib import Path

from generator.settings import EnvSettings, load_env

BASE = {
    "stack_name": "sfncopy-test",
    "region": "us-east-1",
    "num_copy_lambda_workers": "2",
    "max_payload_size_per_lambda_execution_in_mb": "1024",
    "source_buckets": "src-bucket",
    "target_buckets": "tgt-bucket",
    "package_bucket": "pkg-bucket",
    "manifest_bucket": "create",
    "manifest_prefix": "sfncopy/",
    "planner_memory_mb": "512",
    "planner_timeout_seconds": "300",
    "worker_memory_mb": "1024",
    "worker_timeout_seconds": "900",
    "finalizer_memory_mb": "512",
    "finalizer_timeout_seconds": "300",
}


def env_text(values: dict[str, str | None]) -> str:
    lines = []
    for name, value in values.items():
        if value is not None:
            lines.append(f'export {name}="{value}"' if " " in value else f"export {name}={value}")
    return "\n".join(lines) + "\n"


def write_env(envs_dir: Path, name: str = "test", /, **changes: str | None) -> Path:
    """envs_dir/<name>-env.sh with BASE's values, ``changes`` applied (None removes a variable)."""
    envs_dir.mkdir(parents=True, exist_ok=True)
    path = envs_dir / f"{name}-env.sh"
    path.write_text(env_text({**BASE, **changes}), encoding="utf-8")
    return path


def settings_for(envs_dir: Path, name: str = "test", /, **changes: str | None) -> EnvSettings:
    write_env(envs_dir, name, **changes)
    return load_env(name, envs_dir, environ={})
