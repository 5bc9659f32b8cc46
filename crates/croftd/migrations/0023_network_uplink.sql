-- A routed network's uplink: the host interface on which the provider
-- expects the pool's addresses on-link (croft answers ARP and neighbour
-- discovery for them there). NULL: the pool is routed to the host.
ALTER TABLE networks ADD COLUMN uplink TEXT;
