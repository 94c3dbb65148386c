"""Which YAML config file s3sign reads, by the lookup order ``s3sign.config`` states:
``--config PATH``, else ``$S3SIGN_CONFIG``, else ``./s3sign.yaml``, else
``$XDG_CONFIG_HOME/s3sign/config.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from s3sign.errors import ConfigError


def find_config_file(
    config_path: Path | None,
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> Path | None:
    """The YAML file to read, by the lookup order in the module docstring.

    A file named explicitly (``--config`` or ``S3SIGN_CONFIG``) must exist; the
    implicit locations are used only when they exist.
    """
    explicit = config_path or (Path(env["S3SIGN_CONFIG"]) if env.get("S3SIGN_CONFIG") else None)
    if explicit is not None:
        if not explicit.is_file():
            origin = "--config" if config_path else "S3SIGN_CONFIG"
            raise ConfigError(
                f"config file {explicit} ({origin}) does not exist or is not a file",
                hint="pass an existing YAML file, or leave it out to use the defaults",
            )
        return explicit
    local = (cwd or Path.cwd()) / "s3sign.yaml"
    if local.is_file():
        return local
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".config")
    user = Path(xdg) / "s3sign" / "config.yaml"
    return user if user.is_file() else None
