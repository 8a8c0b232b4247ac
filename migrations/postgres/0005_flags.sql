-- Issue 31. Switches every instance reads: `maintenance` (grpc-auth maintenance on) makes them
-- refuse writes while the data is being moved, so an export misses nothing.
CREATE TABLE auth_flags (
  name  text PRIMARY KEY,
  value boolean NOT NULL
);
