-- A later change: versions sort numerically (1 < 1.1 < 2).
ALTER TABLE greetings ADD COLUMN audience text NOT NULL DEFAULT 'world';
