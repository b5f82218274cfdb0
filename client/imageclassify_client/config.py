"""Where the API lives and which key to use: flags, environment, then the saved config file.

The saved file is `$XDG_CONFIG_HOME/imageclassify/config.json` (default
`~/.config/imageclassify/`), folder 0700 and file 0600, because it holds API
keys. Keys are saved per API URL, and a saved key is only ever sent to the URL it
was issued by: pointing `--api` at another server never leaks it there.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageclassify_client.errors import UsageProblem

DEFAULT_API = "http://127.0.0.1:8080"
API_ENV, KEY_ENV = "IMAGECLASSIFY_API", "IMAGECLASSIFY_KEY"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "imageclassify"


def config_path() -> Path:
    return config_dir() / "config.json"


def load() -> dict[str, Any]:
    """The saved settings, or an empty config when there are none yet."""
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"Cannot read {path}: {exc}. Fix or delete it, then log in again.") from None
    return data if isinstance(data, dict) else {}


def save_account(api: str, username: str, api_key: str) -> Path:
    """Remember `api` as the current API and this account's key for it; the file is written 0600, atomically."""
    data = load()
    saved = data.get("accounts")
    accounts: dict[str, Any] = saved if isinstance(saved, dict) else {}
    accounts[normalise(api)] = {"username": username, "api_key": api_key}
    data.update(api=normalise(api), accounts=accounts)
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, config_path())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return config_path()


def normalise(api: str) -> str:
    return api.strip().rstrip("/")


@dataclass(frozen=True)
class Settings:
    api: str
    key: str | None
    username: str | None


def resolve(api_flag: str | None, key_flag: str | None) -> Settings:
    """`--api`, else $IMAGECLASSIFY_API, else the saved API, else the local stack; the key likewise."""
    data = load()
    api = normalise(api_flag or os.environ.get(API_ENV) or str(data.get("api") or DEFAULT_API))
    if not api.startswith(("http://", "https://")):
        raise UsageProblem(f"The API URL must start with http:// or https://, not {api!r}.")
    saved = (data.get("accounts") or {}).get(api) or {}
    key = key_flag or os.environ.get(KEY_ENV) or saved.get("api_key")
    return Settings(api=api, key=key or None, username=saved.get("username"))
