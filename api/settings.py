"""The one typed settings object, read at the edge (environment variables ``CAPMAP_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path | None:
    shared = ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPMAP_", extra="ignore")

    store: str = Field(default=f"sqlite:///{ROOT / 'out' / 'capmap.sqlite'}",
                       description="sqlite:///path (embedded, default) or bolt:// / neo4j:// URI")
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("neo4j")
    neo4j_database: str = "neo4j"
    batch_size: int = Field(default=5000, ge=1)
    seeds_dir: Path = ROOT / "seeds"
    data_dir: Path | None = Field(default_factory=_default_data_dir,
                                  description="folder with data that may not be bundled (crm_sales_opportunities/)")
    out_dir: Path = ROOT / "out"
    seed: int = 0
    half_life_days: float = 365.0
    prior_strength: float = 2.0
    min_evidence_for_clustering: int = 10
    min_cluster_size: int = 15
    hours_per_week: float = 4.0
