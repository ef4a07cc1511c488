"""The [guidelines] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from gap_replay.core.errors import ConfigError


@dataclass
class GuidelinesConfig:
    sources: list[str] = field(default_factory=list)  # tags; empty = every source that needs no browser
    sources_config: str = ""  # TOML file adding or overriding sources
    raw_store: str = ""  # where raw responses are kept; default <output>/../guidelines-raw
    user_agent: str = "gap-replay/0.1 (clinical-guidelines corpus builder; +https://github.com/gap-replay)"
    request_delay: float = 1.0  # seconds between requests to one host, unless robots.txt asks for more
    timeout: float = 30.0
    max_retries: int = 4
    max_pages_per_source: int = 0  # 0 = no limit
    # Refetch stored articles with conditional requests (If-None-Match / If-Modified-Since); a 304
    # keeps the stored page. Off: stored articles are not requested again.
    recrawl: bool = False

    def validate(self) -> None:
        if self.request_delay < 0 or self.timeout <= 0:
            raise ConfigError("guidelines.request_delay must be >= 0 and guidelines.timeout > 0")
        if self.max_retries < 0 or self.max_pages_per_source < 0:
            raise ConfigError("guidelines.max_retries and guidelines.max_pages_per_source must be >= 0")
