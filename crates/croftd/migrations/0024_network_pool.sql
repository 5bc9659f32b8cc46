-- The addresses a network's VPSes may get, as ranges inside its subnets
-- (`198.51.100.70-198.51.100.79,2001:db8:5::10`): on a bridged network
-- the provider's link is shared with others. NULL: the whole subnets.
ALTER TABLE networks ADD COLUMN pool TEXT;
