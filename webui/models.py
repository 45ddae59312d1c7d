"""Request bodies of the JSON API. Constraints live here so a malformed
request is a 422 before any code runs, never a 500."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Reason = Field(default=None, max_length=500)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuarantineRequest(Strict):
    reason: str | None = Reason
    expires_minutes: int | None = Field(default=None, ge=1, le=525600)


class DestinationRequest(Strict):
    destination: str = Field(min_length=1, max_length=64,
                             description="IP address or network (CIDR)")
    reason: str | None = Reason
    expires_minutes: int | None = Field(default=None, ge=1, le=525600)


class DeviceUpdate(Strict):
    name: str | None = Field(default=None, max_length=64,
                             description="Display name; empty string clears it")
    type: str | None = Field(default=None, max_length=64,
                             description="Device type; empty string clears it")


class RelearnRequest(Strict):
    days: float | None = Field(default=None, gt=0, le=90)
    reason: str | None = Reason


class MuteRequest(Strict):
    sid: int | None = Field(default=None, ge=1, le=2**31 - 1)
    kind: str | None = Field(default=None, max_length=64)
    mac: str | None = Field(default=None, max_length=17)
    expires_minutes: int = Field(ge=1, le=525600)
    reason: str | None = Reason

    @model_validator(mode="after")
    def _one_target(self) -> "MuteRequest":
        if (self.sid is None) == (self.kind is None):
            raise ValueError("give exactly one of sid or kind")
        return self


class RuleToggle(Strict):
    sid: int | None = Field(default=None, ge=1, le=2**31 - 1)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    cve: str | None = Field(default=None, min_length=1, max_length=32)
    enabled: bool

    @model_validator(mode="after")
    def _one_target(self) -> "RuleToggle":
        if sum(v is not None for v in (self.sid, self.category, self.cve)) != 1:
            raise ValueError("give exactly one of sid, category or cve")
        return self


class SettingsUpdate(Strict):
    failure_policy: Literal["fail-open", "fail-closed"] | None = None
    learning_days: float | None = Field(default=None, ge=0.5, le=90)
    auto_quarantine: bool | None = None
    auto_quarantine_risk: float | None = Field(default=None, gt=0, le=1)


class NewUser(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    password: str = Field(min_length=10, max_length=1024)


class PasswordChange(Strict):
    password: str = Field(min_length=10, max_length=1024)


class Done(BaseModel):
    ok: bool = True
    detail: dict | None = None
