"""Settings, read from environment variables only.

Every variable is listed in the README's "Application configuration" table.
"""
import os

DEFAULTS = {
    "APP_NAME": "{{ cookiecutter.app_name }}",
    "LOG_LEVEL": "INFO",
    "GREETING": "Hello",
    "DATA_DIR": "",
    "DR_ROLE": "",
    "DR_REGION": "",
}


def settings_from_env(environ=None):
    """Return the settings: each key of DEFAULTS, overridden by the environment."""
    environ = os.environ if environ is None else environ
    return {key: environ.get(key, default) for key, default in DEFAULTS.items()}
