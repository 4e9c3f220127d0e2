CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT    NOT NULL CHECK (length(username) BETWEEN 1 AND 63),
    email          TEXT    NOT NULL CHECK (email LIKE '%_@_%'),
    -- PHC string (argon2id); never a clear-text password.
    password_hash  TEXT    NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    is_active      INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    last_login_at  TEXT,
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (tenant_id, username)
);

CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
