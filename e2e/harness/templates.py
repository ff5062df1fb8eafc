"""Fixture templates: YAML objects with declared ${parameters}.

A template file is a header document declaring its parameters, then the
object documents:

    kind: Template
    description: A static hostPath PV and a claim that binds to it.
    parameters:
      name: {}                      # required
      size: {default: 1Gi}
    ---
    apiVersion: v1
    kind: PersistentVolume
    metadata: {name: "${name}"}

Rendering fails on a missing required parameter, on a parameter the template
does not declare, and (at load) on a placeholder that is not declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template as _Text
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    parameters: dict[str, dict[str, Any]]
    body: _Text

    @classmethod
    def load(cls, name: str, directory: Path = FIXTURES) -> Template:
        path = directory / f"{name}.yaml"
        header_text, sep, body = path.read_text().partition("\n---\n")
        header = yaml.safe_load(header_text) or {}
        if not sep or header.get("kind") != "Template":
            raise TemplateError(f"{path}: the first document must be `kind: Template` followed by ---")
        params = {k: (v or {}) for k, v in (header.get("parameters") or {}).items()}
        text = _Text(body)
        if not text.is_valid():
            raise TemplateError(f"{path}: malformed ${{placeholder}}")
        undeclared = set(text.get_identifiers()) - set(params)
        if undeclared:
            raise TemplateError(f"{path}: placeholders not declared as parameters: {', '.join(sorted(undeclared))}")
        return cls(name, header.get("description", ""), params, text)

    def render(self, **values: Any) -> list[dict[str, Any]]:
        unknown = set(values) - set(self.parameters)
        if unknown:
            raise TemplateError(f"template {self.name}: undeclared parameter(s) {', '.join(sorted(unknown))}")
        merged = {k: spec["default"] for k, spec in self.parameters.items() if "default" in spec}
        merged.update(values)
        missing = set(self.parameters) - set(merged)
        if missing:
            raise TemplateError(f"template {self.name}: missing parameter(s) {', '.join(sorted(missing))}")
        text = self.body.substitute({k: str(v) for k, v in merged.items()})
        return [d for d in yaml.safe_load_all(text) if d]
