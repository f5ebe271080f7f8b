#pragma once
// The Lua scripts behind redis::saga_store: every store operation is one call of one of
// them on one key, so it is atomic. Not part of the API.

#include <string_view>

namespace choreo::redis::detail {

// One script, one key (KEYS[1]): the saga's hash, or a marker. ARGV[1] names the operation.
// A saga hash holds: st (status), rs (reason), fs (failed step), t0 and dl (start and
// deadline, ms since the epoch; dl -1 for none), ttl (ms), steps (names in first-claimed
// order, newline-separated), s:<step> (its state), joined (fan-in arrivals, newline-
// separated), j:<join/branch> (an arrival) and op:<id> (an operation's answer, for
// replays). The numbers are saga_status and step_state.
inline constexpr std::string_view saga_script = R"lua(
local key, op = KEYS[1], ARGV[1]
local RUNNING, COMPLETED, ROLLING_BACK, ROLLED_BACK = 0, 1, 2, 3
local CLAIMED, DONE, FAILED, COMPENSATING, COMPENSATED = 0, 1, 2, 3, 4

local function state_of(step)
  local v = redis.call('HGET', key, 's:' .. step)
  if v then return tonumber(v) end
  return nil
end
local function steps()
  local out, list = {}, redis.call('HGET', key, 'steps')
  if list then for name in string.gmatch(list, '[^\n]+') do out[#out + 1] = name end end
  return out
end
local function append(field, entry)
  local list = redis.call('HGET', key, field)
  if list and list ~= '' then list = list .. '\n' .. entry else list = entry end
  redis.call('HSET', key, field, list)
end
local function add_step(step, state)
  append('steps', step)
  redis.call('HSET', key, 's:' .. step, state)
end
local function keep_ttl()
  local ttl = redis.call('HGET', key, 'ttl')
  if ttl then redis.call('PEXPIRE', key, ttl) end
end
-- Ends a rolling-back saga when no step is left claimed, done or compensating.
local function settle(changed, ended)
  local status = tonumber(redis.call('HGET', key, 'st'))
  if status == ROLLING_BACK then
    local open = false
    for _, name in ipairs(steps()) do
      local s = state_of(name)
      if s == CLAIMED or s == DONE or s == COMPENSATING then open = true break end
    end
    if not open then
      status = ROLLED_BACK
      redis.call('HSET', key, 'st', status)
      ended = 1
    end
  end
  keep_ttl()
  return {1, changed, ended, status}
end

-- A transition that rolled the saga back also names its steps (newline-separated), so
-- only their owners need to read the saga: no step is claimed after a rollback.
local function with_steps(answer)
  if answer[2] == 1 then answer[#answer + 1] = redis.call('HGET', key, 'steps') or '' end
  return answer
end

-- A claimed step (or one never claimed: a start) becomes done or failed.
local function finish(step, succeeded)
  local s = state_of(step)
  if s == nil then add_step(step, CLAIMED) s = CLAIMED end
  if s == CLAIMED then
    local to = FAILED
    if succeeded then to = DONE end
    redis.call('HSET', key, 's:' .. step, to)
  end
end
-- A fan-in arrival, counted once: {found, added, arrived}.
local function join(join_step, branch)
  local entry = join_step .. '/' .. branch
  local added = 0
  if redis.call('HSETNX', key, 'j:' .. entry, 1) == 1 then
    append('joined', entry)
    added = 1
  end
  local arrived, prefix, list = 0, join_step .. '/', redis.call('HGET', key, 'joined')
  if list then
    for e in string.gmatch(list, '[^\n]+') do
      if string.sub(e, 1, #prefix) == prefix then arrived = arrived + 1 end
    end
  end
  return {1, added, arrived}
end

local function apply()
  if op == 'create' then
    if redis.call('EXISTS', key) == 1 then return 0 end
    redis.call('HSET', key, 'st', RUNNING, 'rs', '', 'fs', '', 't0', ARGV[2], 'dl', ARGV[3], 'ttl', ARGV[6])
    add_step(ARGV[4], tonumber(ARGV[5]))
    keep_ttl()
    return 1
  end

  local exists = redis.call('EXISTS', key) == 1
  if op == 'claim' then
    if not exists then return 'unknown' end
    if state_of(ARGV[2]) then return 'duplicate' end
    if tonumber(redis.call('HGET', key, 'st')) ~= RUNNING then return 'not_running' end
    add_step(ARGV[2], CLAIMED)
    keep_ttl()
    return 'claimed'
  end
  if op == 'begin_compensation' then
    if not exists then return 'unknown' end
    local status = tonumber(redis.call('HGET', key, 'st'))
    if status == RUNNING or status == COMPLETED then return 'not_rolling_back' end
    local s = state_of(ARGV[2])
    if s == nil or s == FAILED then return 'never_ran' end
    if s == CLAIMED then return 'pending' end
    if s == COMPENSATING or s == COMPENSATED then return 'duplicate' end
    redis.call('HSET', key, 's:' .. ARGV[2], COMPENSATING)
    keep_ttl()
    return 'run'
  end
  if op == 'join' then
    if not exists then return {0, 0, 0} end
    local answer = join(ARGV[2], ARGV[3])
    keep_ttl()
    return answer
  end

  -- The operations that answer a transition: {found, changed, ended_now, status}.
  if not exists then return {0, 0, 0, 0} end
  local status = tonumber(redis.call('HGET', key, 'st'))
  if op == 'finish' then
    finish(ARGV[2], ARGV[3] == '1')
    return settle(0, 0)
  end
  if op == 'finish_step' then
    -- The step done, then (while the saga runs) its fan-in arrivals and the completion:
    -- {finish's transition, then found, added, arrived per join, then complete's transition}.
    finish(ARGV[2], true)
    local answer = settle(0, 0)
    if answer[4] ~= RUNNING then return answer end
    for i = 4, #ARGV - 1 do
      for _, v in ipairs(join(ARGV[i], ARGV[2])) do answer[#answer + 1] = v end
    end
    if ARGV[3] == '1' then
      redis.call('HSET', key, 'st', COMPLETED)
      for _, v in ipairs(settle(1, 1)) do answer[#answer + 1] = v end
    end
    return answer
  end
  if op == 'roll_back' then
    local changed = 0
    if status == RUNNING then
      redis.call('HSET', key, 'st', ROLLING_BACK, 'rs', ARGV[2], 'fs', ARGV[3])
      changed = 1
    end
    if state_of(ARGV[3]) == CLAIMED then redis.call('HSET', key, 's:' .. ARGV[3], FAILED) end
    return with_steps(settle(changed, 0))
  end
  if op == 'finish_compensation' then
    if state_of(ARGV[2]) == COMPENSATING then redis.call('HSET', key, 's:' .. ARGV[2], COMPENSATED) end
    return settle(0, 0)
  end
  if op == 'complete' then
    if status ~= RUNNING then return settle(0, 0) end
    redis.call('HSET', key, 'st', COMPLETED)
    return settle(1, 1)
  end
  if op == 'expire' then
    local deadline = tonumber(redis.call('HGET', key, 'dl'))
    if status ~= RUNNING or deadline < 0 or deadline > tonumber(ARGV[2]) then return settle(0, 0) end
    redis.call('HSET', key, 'st', ROLLING_BACK, 'rs', ARGV[3])
    return with_steps(settle(1, 0))
  end
  return redis.error_reply('choreo saga script: unknown operation ' .. tostring(op))
end

-- Every call carries an operation id (the last argument). Its answer is kept in the hash,
-- so a call repeated after a lost connection (it may have run) gets the same answer
-- instead of, say, 'duplicate' for its own claim.
local seen_field = 'op:' .. ARGV[#ARGV]
local seen = redis.call('HGET', key, seen_field)
if seen then return cjson.decode(seen) end
local answer = apply()
if type(answer) ~= 'table' or answer.err == nil then
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, seen_field, cjson.encode(answer)) end
end
return answer
)lua";

// A marker's value: lines "<until ms>", "<holder>", then three per waiter, first come
// first: "<saga>", "<waits until ms>", "<holds for ms>". Expiries compare the caller's clock
// (the runtime's), so tests on a manual clock behave as in production; Redis's own expiry
// (PX, past the last of them plus ARGV's grace) only cleans up after holders that never
// release. Saga keys hold no newline (correlation keys cannot).
inline constexpr std::string_view marker_script = R"lua(
local key, op = KEYS[1], ARGV[1]
local value = redis.call('GET', key)
local until_ms, holder, queue = 0, nil, {}
if value then
  local fields, start = {}, 1
  while true do
    local cut = string.find(value, '\n', start, true)
    if not cut then fields[#fields + 1] = string.sub(value, start) break end
    fields[#fields + 1] = string.sub(value, start, cut - 1)
    start = cut + 1
  end
  until_ms, holder = tonumber(fields[1]), fields[2]
  for i = 3, #fields - 2, 3 do
    queue[#queue + 1] = {fields[i], tonumber(fields[i + 1]), tonumber(fields[i + 2])}
  end
end
local function prune(now, saga)
  local kept = {}
  for _, w in ipairs(queue) do
    if w[1] ~= saga and w[2] > now then kept[#kept + 1] = w end
  end
  queue = kept
end
local function save(now, grace)
  local parts, last = {string.format('%d', until_ms), holder}, until_ms
  for _, w in ipairs(queue) do
    parts[#parts + 1] = w[1]
    parts[#parts + 1] = string.format('%d', w[2])
    parts[#parts + 1] = string.format('%d', w[3])
    if w[2] > last then last = w[2] end
  end
  redis.call('SET', key, table.concat(parts, '\n'), 'PX', math.max(last - now, 1) + grace)
end
if op == 'acquire' then
  local now, saga, new_until = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
  local grace, wait_until = tonumber(ARGV[5]), tonumber(ARGV[6])
  if holder == nil or holder == saga or until_ms <= now then
    prune(now, saga)
    holder, until_ms = saga, new_until
    save(now, grace)
    return {1, '', 0, 0}
  end
  prune(now, nil)
  for i, w in ipairs(queue) do
    if w[1] == saga then
      save(now, grace)
      return {0, holder, 1, i - 1}
    end
  end
  if wait_until <= now then
    save(now, grace)
    return {0, holder, 0, #queue}
  end
  queue[#queue + 1] = {saga, wait_until, new_until - now}
  save(now, grace)
  return {0, holder, 1, #queue - 1}
end
if op == 'release' then
  local saga, now, grace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  if holder == nil then return {0, ''} end
  prune(now, saga)
  if holder ~= saga then
    save(now, grace)
    return {0, ''}
  end
  if #queue == 0 then
    redis.call('DEL', key)
    return {1, ''}
  end
  local first = table.remove(queue, 1)
  holder, until_ms = first[1], now + first[3]
  save(now, grace)
  return {1, holder}
end
if op == 'holder' then
  if holder and until_ms > tonumber(ARGV[2]) then return holder end
  return false
end
return redis.error_reply('choreo marker script: unknown operation ' .. tostring(op))
)lua";

} // namespace choreo::redis::detail
