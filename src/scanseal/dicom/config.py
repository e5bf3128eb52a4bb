"""The [dicom] table of scanseal.toml: where the Storage SCP listens and whom it seals for.

```toml
[dicom]
enabled = true
ae_title = "SCANSEAL"
host = "127.0.0.1"
port = 11112
stow = true                                           # POST /dicom-web/studies on the API
recipients = ["cards/radiology.card.json"]           # every pushed study is sealed for these
[dicom.routes]
CT_ROOM_2 = ["cards/cardiology.card.json"]            # ...unless the calling AE has a route
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanseal._toml import read_toml
from scanseal.config import scanseal_home
from scanseal.crypto.identity import IdentityCard
from scanseal.errors import InvalidInput


@dataclass(frozen=True)
class DicomConfig:
    enabled: bool = False
    ae_title: str = "SCANSEAL"
    host: str = "127.0.0.1"
    port: int = 11112
    stow: bool = False
    recipients: tuple[Path, ...] = ()
    routes: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidInput("dicom: port out of range")
        if not 0 < len(self.ae_title) <= 16 or not self.ae_title.isascii():
            raise InvalidInput("dicom: ae_title must be 1 to 16 ASCII characters")
        if self.enabled and not self.recipients:
            raise InvalidInput("dicom: name at least one recipient card")

    def cards_for(self, calling_ae: str) -> list[IdentityCard]:
        """The recipients of what ``calling_ae`` pushes: its route, else the default list."""
        paths = self.routes.get(calling_ae.strip(), self.recipients)
        return [IdentityCard.load(path) for path in paths]

    @classmethod
    def load(cls, path: Path | None = None) -> DicomConfig:
        file = path if path is not None else scanseal_home() / "scanseal.toml"
        if not file.exists():
            return cls()
        table = read_toml(file).get("dicom", {})
        if not isinstance(table, dict):
            raise InvalidInput(f"{file}: [dicom] must be a table")
        return cls(**_coerce(table, file.parent))


def _coerce(table: dict[str, Any], base: Path) -> dict[str, Any]:
    def paths(raw: Any) -> tuple[Path, ...]:
        if not isinstance(raw, list):
            raise InvalidInput("dicom: recipients must be a list of card files")
        return tuple(base / Path(str(p)).expanduser() for p in raw)

    known = {"enabled", "stow", "ae_title", "host", "port", "recipients", "routes"}
    unknown = set(table) - known
    if unknown:
        raise InvalidInput(f"unknown dicom setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    try:
        for name in ("enabled", "stow", "ae_title", "host", "port"):
            if name in table:
                kind = {"enabled": bool, "stow": bool, "port": int}.get(name, str)
                values[name] = kind(table[name])
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"dicom setting: {error}") from error
    if "recipients" in table:
        values["recipients"] = paths(table["recipients"])
    if "routes" in table:
        routes = table["routes"]
        if not isinstance(routes, dict):
            raise InvalidInput("dicom: routes must be a table of AE title = [card files]")
        values["routes"] = {str(ae): paths(cards) for ae, cards in routes.items()}
    return values
