-- Firewall rules in both directions, in an order of their own (a rule can
-- be inserted at, moved to or replaced in any place): `position` counts
-- from 0 within a VPS's rules, in the order they were added until now.
ALTER TABLE firewall_rules ADD COLUMN direction TEXT NOT NULL DEFAULT 'in';
ALTER TABLE firewall_rules ADD COLUMN destination TEXT;
ALTER TABLE firewall_rules ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
UPDATE firewall_rules SET position = (
    SELECT COUNT(*) FROM firewall_rules AS earlier
    WHERE earlier.instance = firewall_rules.instance AND earlier.id < firewall_rules.id
);
