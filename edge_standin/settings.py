"""Start-up settings of the edge stand-in; most of them can be changed later as knobs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Settings:
    namespaces: dict[str, str] = field(default_factory=dict)  # environment -> KV namespace id
    account: str = "demo-account"
    token: str = "demo-token"
    propagation_delay: float = 2.0  # seconds until a KV write reaches the edge
    rate_limit: int = 10  # edge requests per client per window; 0 turns the limit off
    rate_window: float = 10.0
    exempt_token: str | None = None  # X-Monitoring-Token value that skips the edge limit
    api_rate_limit: int = 1200  # Cloudflare API calls per api_rate_window; 0 turns it off
    api_rate_window: float = 300.0
    seed_config: bool = False  # write an initial `config` value into every namespace

    def as_dict(self) -> dict:
        return asdict(self)


# Settings a running stand-in lets the control API change, with the type each value must have.
ADJUSTABLE_SETTINGS: dict[str, type] = {
    "propagation_delay": float,
    "rate_limit": int,
    "rate_window": float,
    "exempt_token": str,
    "api_rate_limit": int,
    "api_rate_window": float,
}
