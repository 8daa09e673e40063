//! The Lua scripts behind [`super::RedisKv`]: each operation of the
//! contract is one script, so one round trip and atomic (Redis runs a
//! script alone). Every key a script touches is passed in `KEYS` and all of
//! them share one hash tag, so on a Redis Cluster they sit in one slot.
//!
//! A table is a hash (key → value) plus a sorted set of its keys, all with
//! score 0, so `ZRANGEBYLEX` lists them in byte order. Every write below
//! keeps the two in step.

/// Lua: `apply(hash, idx, kind, key, value)` puts (`kind` `p`) or deletes
/// (`kind` `d`) one key, keeping the index in step with the hash.
macro_rules! lua_apply {
    () => {
        r"
local function apply(h, x, kind, key, value)
  if kind == 'p' then
    redis.call('HSET', h, key, value)
    redis.call('ZADD', x, 0, key)
  else
    redis.call('HDEL', h, key)
    redis.call('ZREM', x, key)
  end
end
"
    };
}

/// `kind` argument of a put for [`lua_apply`].
pub(super) const PUT: &str = "p";
/// `kind` argument of a delete for [`lua_apply`].
pub(super) const DELETE: &str = "d";

/// KEYS: the hash of each key read. ARGV: the keys. Returns the values in
/// order (nil when absent).
const GET_MULTI: &str = r"
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGET', KEYS[i], ARGV[i]) end
return out
";

/// KEYS: per op, its table's hash then index. ARGV: per op, kind, key,
/// value (empty for a delete).
const WRITE: &str = concat!(
    lua_apply!(),
    r"
for i = 1, #KEYS / 2 do
  apply(KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i])
end
return 1
"
);

/// KEYS: the table's hash and index, then per extra op (of every item, in
/// order) its table's hash and index. ARGV: per item, key, value, number of
/// extra ops, then those ops as kind, key, value. Returns per item 1 if it
/// went in, else 0 (its extra ops are skipped).
const INSERT_NEW: &str = concat!(
    lua_apply!(),
    r"
local out, a, k = {}, 1, 3
while a <= #ARGV do
  local key, value, extra = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local fresh = redis.call('HSETNX', KEYS[1], key, value) == 1
  if fresh then redis.call('ZADD', KEYS[2], 0, key) end
  for _ = 1, extra do
    if fresh then apply(KEYS[k], KEYS[k + 1], ARGV[a], ARGV[a + 1], ARGV[a + 2]) end
    k = k + 2
    a = a + 3
  end
  out[#out + 1] = fresh and 1 or 0
end
return out
"
);

/// KEYS: the table's hash and index. ARGV: per swap, key, expected present
/// (`1`/`0`), expected value, new present (`1`/`0`), new value. Returns,
/// per swap, 1 if swapped, 0 if the key held something else.
const COMPARE_AND_SWAP: &str = concat!(
    lua_apply!(),
    r"
local done = {}
for i = 1, #ARGV, 5 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local same
  if ARGV[i + 1] == '1' then same = cur == ARGV[i + 2] else same = not cur end
  if same then
    apply(KEYS[1], KEYS[2], ARGV[i + 3] == '1' and 'p' or 'd', ARGV[i], ARGV[i + 4])
    done[#done + 1] = 1
  else
    done[#done + 1] = 0
  end
end
return done
"
);

/// KEYS: the table's hash and index. ARGV: `ZRANGEBYLEX` min and max, limit.
/// Returns key, value, key, value… in byte order of the keys.
const SCAN: &str = r"
local keys = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, key in ipairs(keys) do
  local value = redis.call('HGET', KEYS[1], key)
  if value then
    out[#out + 1] = key
    out[#out + 1] = value
  end
end
return out
";

/// KEYS: the table's hash and index. ARGV: `ZLEXCOUNT` min and max.
/// Returns how many keys lie in the range (the whole table: `HLEN`).
const COUNT: &str = r"
if ARGV[1] == '-' and ARGV[2] == '+' then
  return redis.call('HLEN', KEYS[1])
end
return redis.call('ZLEXCOUNT', KEYS[2], ARGV[1], ARGV[2])
";

/// KEYS: the meta hash and index. ARGV: the counter's field, the increment.
/// Returns the new value.
const INCR: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return n
";

/// The scripts, loaded on first use (EVALSHA, then SCRIPT LOAD on a miss).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) get_multi: redis::Script,
    pub(super) write: redis::Script,
    pub(super) insert_new: redis::Script,
    pub(super) compare_and_swap: redis::Script,
    pub(super) scan: redis::Script,
    pub(super) count: redis::Script,
    pub(super) incr: redis::Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            get_multi: redis::Script::new(GET_MULTI),
            write: redis::Script::new(WRITE),
            insert_new: redis::Script::new(INSERT_NEW),
            compare_and_swap: redis::Script::new(COMPARE_AND_SWAP),
            scan: redis::Script::new(SCAN),
            count: redis::Script::new(COUNT),
            incr: redis::Script::new(INCR),
        }
    }
}
