"""Warnings and infos that travel with results (Prometheus's ``util/annotations``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Annotations:
    """Ordered, de-duplicated warning and info texts.

    Prometheus de-duplicates by the text without its ``(line:col)`` position, so
    callers add the message and the position separately.
    """

    warnings: dict[str, str] = field(default_factory=dict)
    infos: dict[str, str] = field(default_factory=dict)

    def warn(self, text: str, position: str = "") -> None:
        self.warnings.setdefault(text, f"{text} ({position})" if position else text)

    def info(self, text: str, position: str = "") -> None:
        self.infos.setdefault(text, f"{text} ({position})" if position else text)

    def merge(self, other: Annotations | None) -> Annotations:
        if other is not None:
            for k, v in other.warnings.items():
                self.warnings.setdefault(k, v)
            for k, v in other.infos.items():
                self.infos.setdefault(k, v)
        return self

    def warning_list(self) -> list[str]:
        return list(self.warnings.values())

    def info_list(self) -> list[str]:
        return list(self.infos.values())

    def __bool__(self) -> bool:
        return bool(self.warnings or self.infos)
