CREATE TABLE performance_alerts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    alert_type       TEXT             NOT NULL CHECK (alert_type IN
                        ('latency', 'error_rate', 'throughput', 'saturation', 'availability', 'custom')),
    severity         TEXT             NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    title            TEXT             NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    description      TEXT             NOT NULL DEFAULT '',
    endpoint         TEXT,
    service_name     TEXT             NOT NULL,
    metric_value     DOUBLE PRECISION,
    threshold_value  DOUBLE PRECISION,
    status           TEXT             NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    acknowledged_at  TIMESTAMPTZ,
    resolved_at      TIMESTAMPTZ,
    first_occurrence TIMESTAMPTZ      NOT NULL DEFAULT now(),
    last_occurrence  TIMESTAMPTZ      NOT NULL DEFAULT now(),
    occurrence_count INTEGER          NOT NULL DEFAULT 1 CHECK (occurrence_count >= 1),
    metadata         JSONB            NOT NULL DEFAULT '{}'::jsonb,
    created_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    CHECK (last_occurrence >= first_occurrence),
    CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL),
    CHECK (status <> 'resolved' OR resolved_at IS NOT NULL)
);

-- The dashboard's "open alerts by severity" and the de-duplication lookup.
CREATE INDEX performance_alerts_open ON performance_alerts (severity, last_occurrence)
    WHERE status <> 'resolved';
CREATE INDEX performance_alerts_dedup ON performance_alerts (service_name, alert_type, endpoint, status);
CREATE INDEX performance_alerts_tenant ON performance_alerts (tenant_id);
CREATE INDEX performance_alerts_acknowledged_by ON performance_alerts (acknowledged_by);
