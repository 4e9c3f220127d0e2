CREATE TABLE performance_alerts (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id        BIGINT,
    alert_type       VARCHAR(32)  NOT NULL CHECK (alert_type IN
                        ('latency', 'error_rate', 'throughput', 'saturation', 'availability', 'custom')),
    severity         VARCHAR(16)  NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    title            VARCHAR(255) NOT NULL CHECK (CHAR_LENGTH(title) BETWEEN 1 AND 255),
    description      TEXT         NOT NULL DEFAULT (''),
    endpoint         VARCHAR(255),
    service_name     VARCHAR(255) NOT NULL,
    metric_value     DOUBLE,
    threshold_value  DOUBLE,
    status           VARCHAR(16)  NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by  BIGINT,
    acknowledged_at  DATETIME(6),
    resolved_at      DATETIME(6),
    first_occurrence DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_occurrence  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    occurrence_count INT          NOT NULL DEFAULT 1 CHECK (occurrence_count >= 1),
    metadata         JSON         NOT NULL DEFAULT ('{}') CHECK (JSON_VALID(metadata)),
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    CHECK (last_occurrence >= first_occurrence),
    CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL),
    CHECK (status <> 'resolved' OR resolved_at IS NOT NULL),
    CONSTRAINT performance_alerts_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT performance_alerts_ack_fk FOREIGN KEY (acknowledged_by) REFERENCES users (id) ON DELETE SET NULL
) ENGINE = InnoDB;

-- The dashboard's "open alerts by severity" (no partial index here: the
-- status column narrows it) and the de-duplication lookup.
CREATE INDEX performance_alerts_open ON performance_alerts (severity, status, last_occurrence);
CREATE INDEX performance_alerts_dedup ON performance_alerts (service_name, alert_type, endpoint, status);
