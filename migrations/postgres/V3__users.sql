CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT        NOT NULL CHECK (length(username) BETWEEN 1 AND 63),
    email          TEXT        NOT NULL CHECK (email LIKE '%_@_%'),
    -- PHC string (argon2id); never a clear-text password.
    password_hash  TEXT        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    is_active      BOOLEAN     NOT NULL DEFAULT true,
    last_login_at  TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, username)
);

CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
