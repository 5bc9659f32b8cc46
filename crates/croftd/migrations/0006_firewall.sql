-- Each VPS's inbound firewall rules, matched in id order (first match
-- wins); the default policy is the VPS's `firewall.default` setting.
CREATE TABLE firewall_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance    TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
    action      TEXT NOT NULL,          -- 'allow' or 'deny'
    protocol    TEXT NOT NULL,          -- 'tcp', 'udp', 'icmp' or 'any'
    port        TEXT,                   -- '22' or '8000-8100'
    source      TEXT                    -- CIDR
);
