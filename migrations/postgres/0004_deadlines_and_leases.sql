-- Issue 31. A write's deadline, checked inside the statement that writes (or in the message that
-- commits): past it the statement fails (SQLSTATE AU001) and nothing is written. The service sets
-- it to when it stops waiting for the answer, on this server's clock, so a statement that reaches
-- the server late (a frozen server, a slow network) cannot take effect after the caller was told
-- UNAVAILABLE, and the caller's retry is safe. NULL: no deadline.
CREATE FUNCTION auth_on_time(deadline_ms bigint) RETURNS boolean
  LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
BEGIN
  IF deadline_ms IS NOT NULL AND floor(extract(epoch FROM clock_timestamp()) * 1000) > deadline_ms THEN
    RAISE EXCEPTION 'the statement reached the database after its deadline: nothing was written' USING ERRCODE = 'AU001';
  END IF;
  RETURN true;
END $$;

-- Login attempts in flight count until the newest one's lease runs out: a login whose end never
-- reached the database (it failed, the instance died) no longer holds its account back for a day.
ALTER TABLE auth_attempts ADD COLUMN in_flight_until bigint NOT NULL DEFAULT 0;
