"""Keys as data: the ``[keys]`` section of the config file rebinds the timeline's keys by
the ids of their bindings (``zoom_in = "i"``, ``find = "ctrl+f,/"``); ``?`` and the key bar
then show the keys as rebound. No UI library here: the app hands the map to Textual."""

from __future__ import annotations

from typing import Iterable

from ..analysis.rules import ConfigError, read_config


def load_keymap(config: str | None, ids: Iterable[str]) -> dict[str, str]:
    """{binding id: keys} from the config's ``[keys]`` (``config`` None: the default
    config file, if there is one); a one-line error for an unknown id or a value that is
    not a key list."""
    path, data = read_config(config)
    if path is None:
        return {}
    section = data.get("keys", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [keys] must be a table (id = \"key\")")
    known = sorted(set(ids))
    out: dict[str, str] = {}
    for bid, keys in section.items():
        if bid not in known:
            raise ConfigError(f"{path}: [keys] has no key called {bid!r} (ids: "
                             f"{', '.join(known)})")
        if not isinstance(keys, str) or not all(k.strip() for k in keys.split(",")):
            raise ConfigError(f"{path}: keys.{bid} must be a key or keys split by commas "
                             "(\"i\", \"ctrl+f,/\")")
        out[bid] = ",".join(k.strip() for k in keys.split(","))
    return out
