"""The template generator: env settings (envs/ENV-env.sh) -> troposphere Template -> cfn/ENV.json."""

from generator.settings import EnvSettings, EnvSettingsError, available_envs, load_env
from generator.state_machine import RetryTiming
from generator.template import build_template, render_template, template_path, write_template

__all__ = [
    "EnvSettings",
    "EnvSettingsError",
    "RetryTiming",
    "available_envs",
    "build_template",
    "load_env",
    "render_template",
    "template_path",
    "write_template",
]
