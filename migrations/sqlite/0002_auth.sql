-- snapex authentication schema (sqlite). Keep in step with migrations/postgres/0002_auth.sql.
-- Owned by src/auth. Timestamps are BIGINT milliseconds since the Unix epoch, as in 0001_core.
-- No secret is stored in plain text: API keys keep only their Digest HA1 sealed with the
-- deployment key (AES-256-GCM), service accounts and bearer tokens only a SHA-256.

-- Programmatic API keys (HTTP Digest). The private key is shown once and never stored; the
-- server needs HA1 = MD5(publicKey:realm:privateKey) to check a digest response.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    public_key   TEXT NOT NULL UNIQUE,
    sealed_ha1   TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(org_id);

-- Service accounts (OAuth 2.0 client credentials).
CREATE TABLE service_accounts (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    client_id      TEXT NOT NULL UNIQUE,
    secret_sha256  TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX service_accounts_org ON service_accounts(org_id);

-- Roles of keys and service accounts. group_id is '' for an organization role (so that it can
-- take part in the primary key on both engines) and a project id for a project role.
CREATE TABLE auth_grants (
    principal_id  TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    group_id      TEXT NOT NULL,
    role          TEXT NOT NULL,
    PRIMARY KEY (principal_id, group_id, role)
);

-- One-hour bearer tokens, by SHA-256 of the token.
CREATE TABLE oauth_tokens (
    token_sha256        TEXT PRIMARY KEY,
    service_account_id  TEXT NOT NULL REFERENCES service_accounts(id),
    expires_at          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX oauth_tokens_expiry ON oauth_tokens(expires_at);

-- Digest nonce counts already used, shared by every node so that a captured request cannot be
-- replayed against another node. Rows die with their nonce (expires_at) and are purged.
CREATE TABLE digest_nonce_uses (
    nonce       TEXT NOT NULL,
    nc          BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (nonce, nc)
);
CREATE INDEX digest_nonce_uses_expiry ON digest_nonce_uses(expires_at);

-- A value sealed with the deployment key when the database was first used, so that a node
-- started with a different key refuses to run instead of failing on every secret.
CREATE TABLE auth_key_check (
    id      BIGINT PRIMARY KEY,
    sealed  TEXT NOT NULL
);
