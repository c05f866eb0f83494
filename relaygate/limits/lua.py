"""The two Lua scripts RedisBackend runs: one round trip per reserve, one per settle.

Kept apart from redis.py so the algorithm reads in one place; it mirrors memory.py exactly
(the same admission test, slot arithmetic and retry-after). Redis runs a script atomically, so
check-all-then-take-all over every matched key cannot interleave with another replica.

Key layouts (all under the configured prefix):
- sliding window (`kind s`): a hash with one field per live slot (slot index -> amount) and one
  `t<slot>` per live slot (ms of its latest reservation), plus `tot` (sum of stored slots) and `lo`
  (oldest slot stored). The oldest slot stops counting once its latest reservation is a window old
  (`live` below) and is dropped when the next slot begins. Expiring slots walks only the slots that
  left since the last call (HMGET/HDEL over that range), so a call costs O(1) amortised.
  PEXPIRE 2 x window on every write: an idle bucket disappears by itself.
- calendar counter (`kind c`): a string holding USD spent in one budget window (the window start is
  in the key name); PEXPIRE until the window's end plus a settle grace (relative to the caller's
  clock, so a skewed or injected clock still gets a sane TTL).

Reserve ARGV: now_ms, then 6 per key: kind, limit, amount, check (1, or 0 for audit rules),
p1, p2 where for `s` p1 = current slot, p2 = slot_ms and for `c` p1 = window end ms,
p2 = ttl ms. Returns {1, rem_1, slot_1, ...} or {0, index, retry_ms}.
Settle ARGV: now_ms, then 5 per key: kind, delta, reserved slot, current slot, slot_ms.
"""

from __future__ import annotations

from relaygate.limits.rules import SLOTS

_COMMON = f"""
local S = {SLOTS}
-- Slot indexes and sliding amounts are integers: format them so Redis never sees 1.7e+09.
local function I(x) return string.format('%d', x) end
local function T(slot) return 't' .. I(slot) end
-- backend.admits: the amount fits in what is left, and something is left (EPS: float rounding of dollars).
local EPS = 1e-9
local function admits(used, amount, limit)
  return used + amount <= limit + EPS and used + EPS < limit
end
-- The time recorded for a reservation in slot cur: now, kept inside the slot, never earlier than before.
local function stamp(key, now, cur, slot_ms)
  local t = math.min(math.max(now, cur * slot_ms), (cur + 1) * slot_ms - 1)
  local prev = tonumber(redis.call('HGET', key, T(cur)) or '0')
  if prev > t then return prev end
  return t
end
-- Forget slots older than cur - S. Returns total, lo, effective cur (time never runs backwards per key).
local function advance(key, cur)
  local h = redis.call('HMGET', key, 'tot', 'lo')
  if not h[1] then return 0, cur - S, cur end
  local tot = tonumber(h[1])
  local old = tonumber(h[2])
  local lo = cur - S
  if lo <= old then return tot, old, old + S end
  if lo > old + S then
    redis.call('DEL', key)
    return 0, lo, cur
  end
  local fields = {{}}
  for s = old, lo - 1 do
    fields[#fields + 1] = I(s)
    fields[#fields + 1] = T(s)
  end
  local vals = redis.call('HMGET', key, unpack(fields))
  for i = 1, #vals, 2 do
    if vals[i] then tot = tot - tonumber(vals[i]) end
  end
  redis.call('HDEL', key, unpack(fields))
  if tot < 0 then tot = 0 end
  redis.call('HSET', key, 'tot', I(tot), 'lo', I(lo))
  return tot, lo, cur
end
-- What counts now: the total minus the oldest slot once its latest reservation is a window old.
local function live(key, tot, lo, now, window)
  local h = redis.call('HMGET', key, I(lo), T(lo))
  if h[1] and h[2] and now >= tonumber(h[2]) + window then return tot - tonumber(h[1]) end
  return tot
end
"""

RESERVE = (
    _COMMON
    + """
local now = tonumber(ARGV[1])
local n = #KEYS
local used, tots, curs = {}, {}, {}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local kind, limit, amount = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local check = ARGV[b + 3] == '1'
  local key = KEYS[i]
  if kind == 's' then
    local slot_ms = tonumber(ARGV[b + 5])
    local window = S * slot_ms
    local tot, lo, cur = advance(key, tonumber(ARGV[b + 4]))
    local u = live(key, tot, lo, now, window)
    used[i], tots[i], curs[i] = u, tot, cur
    if check and not admits(u, amount, limit) then
      local fields = {}
      for s = lo, cur do
        fields[#fields + 1] = I(s)
        fields[#fields + 1] = T(s)
      end
      local vals = redis.call('HMGET', key, unpack(fields))
      local freed = 0
      for j = 1, #vals, 2 do
        local v = tonumber(vals[j] or '0')
        -- a slot written before slots had times: assume its end
        local t = tonumber(vals[j + 1] or I((lo + (j - 1) / 2 + 1) * slot_ms - 1))
        if v ~= 0 and now < t + window then
          freed = freed + v
          if admits(u - freed, amount, limit) then
            -- at most a window: concurrent callers' clocks (read before the call) differ by a few ms
            return {0, i, tostring(math.min(t + window - now, window))}
          end
        end
      end
      return {0, i, tostring(window)}
    end
  else
    local u = tonumber(redis.call('GET', key) or '0')
    used[i], curs[i] = u, 0
    if check and not admits(u, amount, limit) then
      return {0, i, tostring(tonumber(ARGV[b + 4]) - now)}
    end
  end
end
local out = {1}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local kind, limit, amount = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local key = KEYS[i]
  if kind == 's' then
    local cur, slot_ms = curs[i], tonumber(ARGV[b + 5])
    local t = stamp(key, now, cur, slot_ms)
    redis.call('HINCRBY', key, I(cur), I(amount))
    redis.call('HSET', key, T(cur), I(t), 'tot', I(tots[i] + amount), 'lo', I(cur - S))
    redis.call('PEXPIRE', key, I(2 * S * slot_ms))
  else
    redis.call('INCRBYFLOAT', key, ARGV[b + 2])
    redis.call('PEXPIRE', key, ARGV[b + 5])
  end
  out[#out + 1] = tostring(limit - used[i] - amount)
  out[#out + 1] = curs[i]
end
return out
"""
)

SETTLE = (
    _COMMON
    + """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 5
  local kind, delta = ARGV[b], tonumber(ARGV[b + 1])
  local key = KEYS[i]
  if kind == 's' then
    -- Expire first, so a slot that has left the window is never refunded or charged.
    local slot_ms = tonumber(ARGV[b + 4])
    local tot, lo, cur = advance(key, tonumber(ARGV[b + 3]))
    local slot = tonumber(ARGV[b + 2])
    local counted = slot >= lo and slot <= cur and redis.call('HEXISTS', key, I(slot)) == 1
    if counted then
      local t = redis.call('HGET', key, T(slot))
      counted = not t or now < tonumber(t) + S * slot_ms
    end
    local target = nil
    if counted then
      target = slot
    elseif delta > 0 then
      target = cur  -- the reservation aged out (a request longer than the window): charge now
    end
    if target then
      local v = tonumber(redis.call('HGET', key, I(target)) or '0')
      local nv = v + delta
      if nv < 0 then nv = 0 end
      tot = tot + nv - v
      if tot < 0 then tot = 0 end
      redis.call('HSET', key, I(target), I(nv), 'tot', I(tot), 'lo', I(lo))
      if not counted then redis.call('HSET', key, T(cur), I(stamp(key, now, cur, slot_ms))) end
      redis.call('PEXPIRE', key, I(2 * S * slot_ms))
    end
  elseif redis.call('EXISTS', key) == 1 then
    local v = tonumber(redis.call('INCRBYFLOAT', key, ARGV[b + 1]))
    if v < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  end
end
return 1
"""
)
