"""The design's own stack doing the read ComplianceIQ's `GET /api/v1/users/me` does, as the
peer of `tests/bench/request_path.py`: FastAPI on uvicorn, an asyncpg pool, PyJWT RS256
verification of the platform's own token, and the same SQL in the same kind of transaction
(tenant setting for row-level security, the profile, the roles) on the same database, as
the same application role.

Configured by environment: PEER_DATABASE_URL, PEER_JWT_KEYS_DIR (the platform's signing
keys; the public halves verify).
"""

import os
from pathlib import Path

import asyncpg
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import FastAPI, Header, HTTPException

PROFILE_SELECT = (
    "SELECT p.user_id, p.email, COALESCE(NULLIF(p.full_name, ''), d.full_name, '') AS full_name, p.job_title, "
    "p.phone_number, p.avatar_uri, p.state, p.timezone, p.locale, p.theme, p.default_dashboard_id, "
    "p.weekly_digest, p.authorization_version, p.created_at, p.updated_at "
    "FROM user_profiles p LEFT JOIN people d ON d.user_id = p.user_id "
    "WHERE p.organization_id = $1 AND p.user_id = $2 AND p.state <> 'removed'"
)
ROLES_SELECT = (
    "SELECT r.id, r.name, r.description, r.permissions, r.built_in, r.created_at, r.updated_at "
    "FROM user_roles ur JOIN roles r ON r.id = ur.role_id AND r.organization_id = ur.organization_id "
    "WHERE ur.organization_id = $1 AND ur.user_id = $2 ORDER BY r.name"
)

app = FastAPI()
keys = {
    path.stem: load_pem_private_key(path.read_bytes(), password=None).public_key()
    for path in Path(os.environ["PEER_JWT_KEYS_DIR"]).glob("*.pem")
}
pool = None


@app.on_event("startup")
async def connect():
    global pool
    pool = await asyncpg.create_pool(os.environ["PEER_DATABASE_URL"], min_size=4, max_size=10)


@app.get("/api/v1/users/me")
async def current_user(authorization: str = Header("")):
    token = authorization.removeprefix("Bearer ").strip()
    try:
        kid = jwt.get_unverified_header(token).get("kid", "")
        claims = jwt.decode(token, keys[kid], algorithms=["RS256"], issuer="complianceiq-auth-service")
    except (jwt.PyJWTError, KeyError):
        raise HTTPException(401, "invalid token")
    organization, user = claims.get("organization_id"), claims["user_id"]
    if not organization:
        raise HTTPException(403, "no organization")
    async with pool.acquire() as connection:
        async with connection.transaction(readonly=True):
            await connection.execute("SELECT set_config('app.current_organization_id', $1, true)", organization)
            profile = await connection.fetchrow(PROFILE_SELECT, organization, user)
            roles = await connection.fetch(ROLES_SELECT, organization, user)
    if profile is None:
        raise HTTPException(404, "no such user")
    return {
        "id": profile["user_id"],
        "email": profile["email"],
        "fullName": profile["full_name"],
        "organizationId": organization,
        "roles": [{"id": role["id"], "name": role["name"], "permissions": role["permissions"].split()} for role in roles],
        "timezone": profile["timezone"],
        "locale": profile["locale"],
    }
