-- What an image is, read from its files when built or imported.
ALTER TABLE images ADD COLUMN distro TEXT;
ALTER TABLE images ADD COLUMN release TEXT;
ALTER TABLE images ADD COLUMN arch TEXT;
