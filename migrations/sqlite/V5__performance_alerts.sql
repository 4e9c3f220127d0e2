CREATE TABLE performance_alerts (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER REFERENCES tenants (id) ON DELETE CASCADE,
    alert_type       TEXT    NOT NULL CHECK (alert_type IN
                        ('latency', 'error_rate', 'throughput', 'saturation', 'availability', 'custom')),
    severity         TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    title            TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 255),
    description      TEXT    NOT NULL DEFAULT '',
    endpoint         TEXT,
    service_name     TEXT    NOT NULL,
    metric_value     REAL,
    threshold_value  REAL,
    status           TEXT    NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    acknowledged_at  TEXT,
    resolved_at      TEXT,
    first_occurrence TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_occurrence  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    occurrence_count INTEGER NOT NULL DEFAULT 1 CHECK (occurrence_count >= 1),
    metadata         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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
