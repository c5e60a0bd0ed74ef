"""The one schema a suite document is checked against (pydantic v2), before any cell runs.

The document's shape (keys, types, seeds, fractions, a safe suite name) is checked here; values are then checked
against the declared parameters (``bench.plan.params``) of the strategies and backbones the suite names, by
``bench.plan.suite.parse_suite``. Every problem becomes one ``UserError`` line naming the key, the value and what
is allowed.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from bench.core.errors import UserError

__all__ = ["SuiteDoc", "validate_document", "SEED_MAX", "NAME_PATTERN"]

SEED_MAX = 2**32 - 1  # numpy's and torch's seeding both accept this range
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"  # the suite name becomes a directory name: no '/', no '..' start

Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Mapping = dict[str, Any]


class SuiteDoc(BaseModel):
    """The keys a suite file may have. A scalar where a list is expected is read as a one-element list."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    description: str = ""
    tasks: list[Name | Mapping] = Field(min_length=1)
    backbones: list[Name | Mapping] = Field(min_length=1)
    strategies: list[Name] = Field(min_length=1)
    seeds: list[Seed] = Field(default=[0], min_length=1)
    fractions: list[Fraction] = Field(default=[1.0], min_length=1)
    params: Mapping = {}
    strategy_params: dict[Name, Mapping] = {}
    backbone_params: dict[Name, Mapping] = {}
    check: Mapping = {}
    search: Mapping | None = None
    budget: Mapping | None = None

    @field_validator("tasks", "backbones", "strategies", "seeds", "fractions", mode="before")
    @classmethod
    def _scalar_as_list(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    @field_validator("params", "strategy_params", "backbone_params", "check", mode="before")
    @classmethod
    def _null_as_empty(cls, value: Any) -> Any:
        return {} if value is None else value


KEYS = tuple(SuiteDoc.model_fields)
REQUIRED = ("tasks", "backbones", "strategies")


def validate_document(raw: Any, where: str) -> SuiteDoc:
    """Check a parsed YAML document against ``SuiteDoc``; the first problem is raised as one line."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a suite must be a YAML mapping with keys {', '.join(REQUIRED)}, ...")
    for key in raw:
        if not isinstance(key, str):
            raise UserError(f"{where}: key {key!r} is not a name; valid keys: {', '.join(KEYS)}")
    try:
        return SuiteDoc.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{where}: {_first_problem(err)}") from None


def _first_problem(err: ValidationError) -> str:
    problems = err.errors(include_url=False)
    # A union (a name or a mapping) reports one problem per member; the first member's is the useful one.
    first = problems[0]
    loc = [str(part) for part in first["loc"] if not _union_tag(str(part))]
    key, value, kind = ".".join(loc), first.get("input"), first["type"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}; valid keys: {', '.join(KEYS)}"
    if kind == "missing":
        return f"missing key {key!r}"
    if kind == "dict_type":
        return f"'{key}' must be a mapping (got {_short(value)})"
    if kind == "list_type":
        return f"'{key}' must be a list (got {_short(value)})"
    if kind == "too_short":
        return f"'{key}' is empty; give at least one value"
    if loc and loc[0] == "fractions":
        return f"fraction {value!r} is outside (0, 1]; use e.g. 0.01, 0.1, 1.0"
    if loc and loc[0] == "seeds":
        return f"seed {_short(value)} is not allowed; seeds are integers in [0, {SEED_MAX}]"
    if key == "name":
        return (f"name {_short(value)} is not a safe directory name; use letters, digits, '.', '_' or '-' "
                "(at most 80, not starting with '.' or '-')")
    return f"{key}: {_short(value)} is not allowed ({first['msg'].lower()})"


def _union_tag(part: str) -> bool:
    """Pydantic names the member of a union in the error's location (``str``, ``dict[str,any]``, ...)."""
    return part == "str" or part.startswith(("dict[", "constrained-str", "function-"))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
