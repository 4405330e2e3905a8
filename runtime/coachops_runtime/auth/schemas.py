"""Auth schemas: accounts, tokens, API keys, end-user tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from coachops_runtime.kit.text import Storable, Text

Scope = Literal[
    "programs:read",
    "programs:write",
    "endusers:read",
    "endusers:write",
    "conversations:read",
    "conversations:write",
    "analytics:read",
]
ALL_SCOPES: frozenset[str] = frozenset(Scope.__args__)  # type: ignore[attr-defined]

Password = Field(min_length=10, max_length=256, description="At least 10 characters.")
EmailStr = Annotated[
    str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), Storable
]


class SignupCreate(BaseModel):
    creator: Text = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the Creator object the platform created for you.",
    )
    email: EmailStr = Field(description="Must be the Creator's contact e-mail.")
    password: Text = Password


class Accepted(BaseModel):
    detail: str


class TokenRequest(BaseModel):
    token: Text = Field(min_length=1, max_length=512)


class LoginCreate(BaseModel):
    email: EmailStr
    password: Text = Field(min_length=1, max_length=256)


class RefreshCreate(BaseModel):
    refresh_token: Text = Field(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class PasswordResetCreate(BaseModel):
    email: EmailStr


class PasswordResetConfirm(BaseModel):
    token: Text = Field(min_length=1, max_length=512)
    new_password: Text = Password


class ApiKeyCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=7)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class ApiKeyPublic(BaseModel):
    api_key_id: uuid.UUID
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself; shown once, stored only as a hash.")


class EndUserTokenCreate(BaseModel):
    end_user_id: uuid.UUID
    program_id: uuid.UUID


class MagicLinkCreate(BaseModel):
    program_id: uuid.UUID


class EndUserToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    end_user_id: uuid.UUID
    program_id: uuid.UUID


class Jwk(BaseModel):
    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str


class Jwks(BaseModel):
    keys: list[Jwk]
