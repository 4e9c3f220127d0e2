-- Tenants own every other row; the system tenant is seeded by dbinit-accounts.
CREATE TABLE tenants (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    slug        VARCHAR(63)  NOT NULL UNIQUE CHECK (CHAR_LENGTH(slug) BETWEEN 1 AND 63),
    name        VARCHAR(255) NOT NULL CHECK (CHAR_LENGTH(name) > 0),
    is_system   BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;

-- At most one system tenant. MySQL has no partial index: a generated column
-- that is NULL for other tenants carries the unique key.
ALTER TABLE tenants
    ADD COLUMN system_marker TINYINT AS (IF(is_system, 1, NULL)) STORED,
    ADD UNIQUE KEY tenants_one_system (system_marker);
