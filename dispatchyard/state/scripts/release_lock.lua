-- Release a lock only if the caller still holds it (compare-and-delete): a holder whose lock
-- expired while it worked must not delete the lock a later holder took.
-- KEYS: the lock key. ARGV: the holder's token.
-- Returns 1 when released, 0 when the lock was no longer the caller's.
local lock_key = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock_key) == token then
  return redis.call('DEL', lock_key)
end
return 0
