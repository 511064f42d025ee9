/**
 * The Lua scripts behind central-hub's locks: each decision (is it free, is this the holder, is this
 * a retry) and its write happen in one script, so no other request runs between the look and the act.
 * Each script touches only the keys it is given (Dragonfly refuses undeclared keys by default).
 *
 * The lock's value, one string with the lock's TTL:
 *   `<token>|<owner>|<acquiredAtMs>|<fencingToken>|<expiresAtMs>|<idempotencyKey or empty>`
 * A released acquisition made with an idempotency key stays, for the rest of its TTL, as
 *   `-|<owner>|<acquiredAtMs>|<fencingToken>|<expiresAtMs>|<idempotencyKey>`
 * which holds nothing (anyone may acquire over it) but tells a late duplicate of that acquire that
 * its answer was received and used. No field may contain `|`: tokens are hex, the routes refuse
 * `|` in owners and keys, numbers are digits. Values written before the key and expiry fields
 * existed (`<token>|<owner>|<acquiredAtMs>`) are still read, renewed and released.
 */

/** Splits a lock value on `|`, keeping empty fields (the trailing empty key). */
const FIELDS = `
local function fields(v)
  local f = {}
  for part in string.gmatch(v .. '|', '([^|]*)|') do f[#f + 1] = part end
  return f
end`;

/**
 * The start of a holder's own operation (RENEW, RELEASE) on KEYS[1] with token ARGV[1]: answers -1
 * when there is no lock (none, or the released marker), 0 when another token holds it; otherwise
 * goes on with the value `v` and its fields `f`.
 */
const HELD_BY_TOKEN = `${FIELDS}
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
local f = fields(v)
if f[1] == '-' then return -1 end
if f[1] ~= ARGV[1] then return 0 end`;

/**
 * KEYS[1] lock, KEYS[2] fence counter; ARGV[1] new token, ARGV[2] owner, ARGV[3] now ms,
 * ARGV[4] ttl ms, ARGV[5] expiry ms, ARGV[6] idempotency key ('' for none), ARGV[7] the fence
 * counter's lifetime in ms. Answers
 *   {'acquired', token, fencingToken, expiresAtMs}   a new acquisition (the fence taken in the same
 *                                                    script, so a lock that expired in between cannot
 *                                                    hand a stale holder a higher number than the next holder's)
 *   {'replayed', token, fencingToken, expiresAtMs}   this owner's acquisition under this key, still held
 *   {'locked', value, pttl}                          held by another acquisition (the holder, read in
 *                                                    the same step, so never "held by nobody")
 *   {'key-used'}                                     this owner's acquisition under this key was released
 * The key counts only with the same owner: someone else's key is no way to their token.
 *
 * The fence is the greatest of the last fence + 1, the server's clock in microseconds (TIME) and the
 * caller's (ARGV[3], in ms), and the counter expires ARGV[7] ms after the last acquisition. The
 * caller's clock is there for Dragonfly, whose TIME inside a script answers 0 (dragonflydb/dragonfly
 * issue 2555; Redis, the stand-in here, answers the time): the replicas' clocks differ by far less
 * than the counter's lifetime, which is all the argument below needs. A counter that merely expired would
 * restart at 1, below the fences the systems a job writes have already seen: they would refuse the
 * new holder and accept the stale one, the reverse of fencing. With the clock as a floor, a fence
 * stays above every earlier one once the counter is gone: each fence is at most its acquisition's
 * microsecond plus the acquisitions taken within the same microsecond (one script at a time: none
 * in practice), and the counter outlives the last acquisition by ARGV[7] ms, so the clock has passed
 * every fence by then. While it lives the counter covers what the clock alone cannot: acquisitions
 * within one microsecond, and a clock stepped back by less than its lifetime. Lock renewals need
 * not refresh it: a fence orders acquisitions, and a holder renewing for days was still acquired
 * before anyone later. Numbers stay below 2^53 (exact in Lua and in JSON) until the year 2255; they
 * are written with %.0f, as Lua's own number-to-string keeps 14 digits.
 */
export const ACQUIRE = `${FIELDS}
local v = redis.call('GET', KEYS[1])
if v then
  local f = fields(v)
  local same = ARGV[6] ~= '' and f[6] == ARGV[6] and f[2] == ARGV[2]
  if f[1] ~= '-' then
    if same then return {'replayed', f[1], tonumber(f[4]), f[5]} end
    return {'locked', v, redis.call('PTTL', KEYS[1])}
  end
  if same then return {'key-used'} end
end
local clock = redis.pcall('TIME')
local serverUs = 0
if type(clock) == 'table' and clock[1] then serverUs = tonumber(clock[1]) * 1000000 + tonumber(clock[2]) end
local fence = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, serverUs, tonumber(ARGV[3]) * 1000)
local fenceText = string.format('%.0f', fence)
redis.call('SET', KEYS[2], fenceText, 'PX', ARGV[7])
redis.call('SET', KEYS[1], table.concat({ARGV[1], ARGV[2], ARGV[3], fenceText, ARGV[5], ARGV[6]}, '|'), 'PX', ARGV[4])
return {'acquired', ARGV[1], fenceText, ARGV[5]}`;

/**
 * KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms, ARGV[3] new expiry ms. Returns 1 renewed, 0 held by
 * another, -1 no lock (expired, or released). The stored expiry moves with the TTL, so a replayed
 * acquire answers the expiry the lock has now.
 */
export const RENEW = `${HELD_BY_TOKEN}
if f[5] then
  f[5] = ARGV[3]
  redis.call('SET', KEYS[1], table.concat(f, '|'), 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`;

/**
 * KEYS[1] lock; ARGV[1] token. Returns 1 released, 0 held by another, -1 no lock. An acquisition
 * made with a key leaves the released marker for the rest of its TTL; one without is deleted.
 */
export const RELEASE = `${HELD_BY_TOKEN}
local ttl = redis.call('PTTL', KEYS[1])
if f[6] and f[6] ~= '' and ttl > 0 then
  f[1] = '-'
  redis.call('SET', KEYS[1], table.concat(f, '|'), 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return 1`;

/** The released marker's first field: no token is `-`. */
export const RELEASED = "-";
