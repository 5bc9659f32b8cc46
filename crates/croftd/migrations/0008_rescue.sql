-- The rescue image a VPS is running from while in rescue mode (its own
-- disk is then at /mnt); NULL for a normal boot.
ALTER TABLE instances ADD COLUMN rescue_image TEXT;
