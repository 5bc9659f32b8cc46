-- The images a tenant may launch, rebuild and rescue from: a JSON array
-- of names, or NULL for every image.
ALTER TABLE tenants ADD COLUMN images TEXT;
