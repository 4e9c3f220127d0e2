-- Tenants own every other row; the system tenant is seeded by dbinit-accounts.
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 63),
    name        TEXT    NOT NULL CHECK (length(name) > 0),
    is_system   INTEGER NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- At most one system tenant.
CREATE UNIQUE INDEX tenants_one_system ON tenants (is_system) WHERE is_system = 1;
