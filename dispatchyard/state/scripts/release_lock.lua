-- Release a lock only if the caller still holds it (compare-and-delete): a holder whose lock
-- expired while it worked must not delete the lock a later holder took.
-- KEYS: the lock key. ARGV: the holder's token.
-- Returns 1 when released, 0 when the lock was no longer the caller's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
