-- Tenants own every other row; the system tenant is seeded by dbinit-accounts.
CREATE TABLE tenants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        TEXT        NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 63),
    name        TEXT        NOT NULL CHECK (length(name) > 0),
    is_system   BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- At most one system tenant.
CREATE UNIQUE INDEX tenants_one_system ON tenants (is_system) WHERE is_system;
