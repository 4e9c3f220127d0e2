CREATE TABLE users (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id      BIGINT       NOT NULL,
    username       VARCHAR(63)  NOT NULL CHECK (CHAR_LENGTH(username) BETWEEN 1 AND 63),
    email          VARCHAR(255) NOT NULL CHECK (email LIKE '%_@_%'),
    -- PHC string (argon2id); never a clear-text password.
    password_hash  VARCHAR(255) NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    is_active      BOOLEAN      NOT NULL DEFAULT TRUE,
    last_login_at  DATETIME(6),
    created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY users_tenant_username (tenant_id, username),
    CONSTRAINT users_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
) ENGINE = InnoDB;

-- One address per tenant, whatever its case (a generated column: MariaDB
-- has no functional index).
ALTER TABLE users
    ADD COLUMN email_lower VARCHAR(255) AS (LOWER(email)) STORED,
    ADD UNIQUE KEY users_tenant_email (tenant_id, email_lower);
