#include "cache/redis_cache.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <charconv>
#include <cmath>
#include <mutex>
#include <vector>

#include "cache/cache_args.h"
#include "common/no_sigpipe.h"
#include "common/url.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

// INCRBY with our two errors told apart, the TTL set only by the call that
// creates the key, and the result read back as a string (Lua numbers are
// doubles: an INCRBY result above 2^53 would lose digits on the way out).
constexpr std::string_view kIncrement = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then
  if ARGV[2] ~= '' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  return ARGV[1]
end
if not string.match(v, '^-?%d+$') then return redis.error_reply('not an integer') end
local ok = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if not ok then return redis.error_reply('overflow') end
return redis.call('GET', KEYS[1])
)lua";

// ARGV: has_expected ("1"/"0"), expected, desired, ttl_ms or "".
constexpr std::string_view kCompareAndSet = R"lua(
local v = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if v ~= ARGV[2] then return 0 end
elseif v then
  return 0
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
)lua";

// ARGV: rate (tokens/s), burst, tokens wanted. Returns {allowed, remaining,
// retry_after_ms}. The bucket expires once it would be full again anyway.
constexpr std::string_view kTake = R"lua(
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(s[1]), tonumber(s[2])
if not tokens or not ts then tokens, ts = burst, now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) / 1000000 * rate) end
local allowed, retry = 0, 0
if tokens >= want then
  tokens = tokens - want
  allowed = 1
else
  retry = math.ceil((want - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens), retry}
)lua";

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[md[i] >> 4]);
    out.push_back(kDigits[md[i] & 0xf]);
  }
  return out;
}

struct Script {
  std::string_view text;
  std::string sha;
};

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

std::string text_of(const redisReply& r) { return std::string(r.str, r.len); }

std::int64_t parse_int(const redisReply& r, std::string_view what) {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  std::int64_t v = 0;
  if (r.type == REDIS_REPLY_STRING) {
    auto [end, ec] = std::from_chars(r.str, r.str + r.len, v);
    if (ec == std::errc() && end == r.str + r.len) return v;
  }
  throw Error(ErrorCode::kInternal, "cache: Redis answered " + std::string(what) +
                                        " with something that is not an integer");
}

class RedisCache final : public Cache {
 public:
  explicit RedisCache(RedisSettings s)
      : s_(std::move(s)),
        increment_{kIncrement, sha1_hex(kIncrement)},
        cas_{kCompareAndSet, sha1_hex(kCompareAndSet)},
        take_{kTake, sha1_hex(kTake)} {
    release(connect());  // fail now, naming the URL, when the server is not there
  }

  std::optional<std::string> get(std::string_view key) override {
    check_key(key);
    auto r = command({"GET", string_key(key)});
    fail_on_error(*r);
    if (r->type == REDIS_REPLY_NIL) return std::nullopt;
    return text_of(*r);
  }

  void set(std::string_view key, std::string_view value, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    const auto k = string_key(key);
    fail_on_error(*(ttl ? command({"SET", k, value, "PX", std::to_string(ttl->count())})
                        : command({"SET", k, value})));
  }

  bool set_if_absent(std::string_view key, std::string_view value, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    const auto k = string_key(key);
    auto r = ttl ? command({"SET", k, value, "NX", "PX", std::to_string(ttl->count())})
                 : command({"SET", k, value, "NX"});
    fail_on_error(*r);
    return r->type != REDIS_REPLY_NIL;
  }

  bool erase(std::string_view key) override {
    check_key(key);
    auto r = command({"DEL", string_key(key)});
    fail_on_error(*r);
    return parse_int(*r, "DEL") > 0;
  }

  std::int64_t increment(std::string_view key, std::int64_t delta, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    const auto ttl_text = ttl ? std::to_string(ttl->count()) : std::string();
    auto r = eval(increment_, string_key(key), {std::to_string(delta), ttl_text});
    if (r->type == REDIS_REPLY_ERROR) {
      const auto msg = text_of(*r);
      const bool overflow = msg.find("overflow") != std::string::npos;
      if (!overflow && msg.find("not an integer") == std::string::npos) fail_on_error(*r);
      throw Error(ErrorCode::kInvalidArgument,
                  "cache key \"" + std::string(key.substr(0, 64)) + "\": " +
                      (overflow ? "the increment would overflow a 64-bit integer"
                                : "holds a value that is not an integer"));
    }
    return parse_int(*r, "INCRBY");
  }

  bool compare_and_set(std::string_view key, const std::optional<std::string>& expected,
                       std::string_view desired, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    auto r = eval(cas_, string_key(key),
                  {expected ? "1" : "0", expected ? std::string_view(*expected) : "", desired,
                   ttl ? std::to_string(ttl->count()) : std::string()});
    fail_on_error(*r);
    return parse_int(*r, "compare-and-set") == 1;
  }

  TokenBucketResult take(std::string_view key, double rate, double burst, double tokens) override {
    check_key(key);
    check_bucket(rate, burst, tokens);
    auto r = eval(take_, bucket_key(key), {number(rate), number(burst), number(tokens)});
    fail_on_error(*r);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
      throw Error(ErrorCode::kInternal, "cache: Redis answered a token bucket take oddly");
    }
    TokenBucketResult out;
    out.allowed = parse_int(*r->element[0], "take") == 1;
    out.remaining = std::strtod(text_of(*r->element[1]).c_str(), nullptr);
    out.retry_after = std::chrono::milliseconds(parse_int(*r->element[2], "take"));
    return out;
  }

 private:
  static std::string number(double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, ec == std::errc() ? end : buf);
  }

  std::string string_key(std::string_view key) const {
    std::string k = s_.prefix;
    k += "s:";
    k += key;
    return k;
  }
  std::string bucket_key(std::string_view key) const {
    std::string k = s_.prefix;
    k += "b:";
    k += key;
    return k;
  }

  // An error reply: the server cannot serve now (LOADING, OOM, READONLY,
  // MISCONF ...), or our script is wrong (ERR in a script: a bug).
  void fail_on_error(const redisReply& r) const {
    if (r.type != REDIS_REPLY_ERROR) return;
    const auto msg = text_of(r);
    const bool ours = msg.starts_with("ERR") && msg.find("script") != std::string::npos;
    throw Error(ours ? ErrorCode::kInternal : ErrorCode::kUnavailable,
                "cache " + s_.display + ": Redis said " + msg);
  }

  Error unavailable(std::string_view what) const {
    return Error(ErrorCode::kUnavailable, "cache " + s_.display + ": " + std::string(what));
  }

  Context connect() {
    const timeval tv{static_cast<time_t>(s_.timeout.count() / 1000),
                     static_cast<suseconds_t>((s_.timeout.count() % 1000) * 1000)};
    Context c(redisConnectWithTimeout(s_.host.c_str(), s_.port, tv));
    if (!c) throw unavailable("cannot allocate a Redis connection");
    if (c->err) throw unavailable(std::string("cannot connect: ") + c->errstr);
    redisSetTimeout(c.get(), tv);
    auto run = [&](std::vector<std::string_view> args) {
      std::vector<const char*> argv;
      std::vector<std::size_t> lens;
      for (auto a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      const NoSigpipeScope quiet;
      Reply r(static_cast<redisReply*>(
          redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (!r) throw unavailable(std::string("cannot connect: ") + c->errstr);
      if (r->type == REDIS_REPLY_ERROR)
        throw unavailable("the server refused " + std::string(args[0]) + ": " + text_of(*r));
    };
    if (!s_.password.empty()) run({"AUTH", s_.password});
    if (s_.db != 0) run({"SELECT", std::to_string(s_.db)});
    return c;
  }

  // A pooled connection (reused = true) or a new one.
  Context acquire(bool& reused) {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        Context c = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
        return c;
      }
    }
    reused = false;
    return connect();
  }

  void release(Context c) {
    std::lock_guard lock(mu_);
    if (static_cast<int>(idle_.size()) < s_.pool) idle_.push_back(std::move(c));
  }

  Reply command(std::initializer_list<std::string_view> args) {
    return command(std::vector<std::string_view>(args));
  }

  Reply command(const std::vector<std::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      Context c = acquire(reused);
      // hiredis writes with plain write(2): a server gone away is EPIPE.
      const NoSigpipeScope quiet;
      Reply r(static_cast<redisReply*>(
          redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (!r) {
        // The connection is gone (c is dropped). One that sat idle in the
        // pool and was found closed most likely met a server restart, which
        // never saw the command: try once on a new one. Never after a
        // timeout: the command may have run, and most are not idempotent.
        const std::string_view why = c->errstr;
        const bool closed =
            c->err == REDIS_ERR_EOF ||
            (c->err == REDIS_ERR_IO && (why.find("reset") != std::string_view::npos ||
                                        why.find("Broken pipe") != std::string_view::npos));
        if (reused && closed && attempt == 0) continue;
        throw unavailable(c->errstr[0] ? std::string(c->errstr) : "connection lost");
      }
      release(std::move(c));
      return r;
    }
  }

  // EVALSHA, falling back to EVAL when the server does not know the script
  // (a restart or SCRIPT FLUSH empties its cache; EVAL loads it again).
  Reply eval(const Script& script, const std::string& key,
             std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> argv{"EVALSHA", script.sha, "1", key};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = command(argv);
    if (r->type == REDIS_REPLY_ERROR && text_of(*r).starts_with("NOSCRIPT")) {
      argv[0] = "EVAL";
      argv[1] = script.text;
      r = command(argv);
    }
    return r;
  }

  RedisSettings s_;
  Script increment_, cas_, take_;
  std::mutex mu_;
  std::vector<Context> idle_;
};

int to_int(std::string_view label, const std::string& url, const std::string& key,
           const std::string& v, int lo, int hi) {
  int out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || out < lo || out > hi) {
    fail_setting(label, url,
                 key + "=" + v + " is not a number from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
  }
  return out;
}

}  // namespace

RedisSettings parse_redis_url(const std::string& url, std::string_view label) {
  check_cache_url(url, label);  // scheme, one host, database number
  const Url u = parse_url(url, label);
  RedisSettings s;
  s.host = u.hosts.front().host;
  if (s.host.empty()) fail_setting(label, url, "has no host: redis://host:port/db");
  s.port = u.hosts.front().port.value_or(6379);
  s.password = u.password;
  if (u.path.size() > 1) s.db = to_int(label, url, "database", u.path.substr(1), 0, 99);
  for (const auto& [k, v] : u.query) {
    if (k == "prefix") {
      if (v.empty() || v.size() > 64) fail_setting(label, url, "prefix must be 1 to 64 characters");
      s.prefix = v;
    } else if (k == "timeout_ms") {
      s.timeout = std::chrono::milliseconds(to_int(label, url, k, v, 1, 600'000));
    } else if (k == "pool") {
      s.pool = to_int(label, url, k, v, 1, 256);
    } else {
      fail_setting(label, url,
                   "has an unknown parameter \"" + k + "\" (known: prefix, timeout_ms, pool)");
    }
  }
  s.display = redact_url(url);
  return s;
}

std::unique_ptr<Cache> make_redis_cache(const std::string& url) {
  return std::make_unique<RedisCache>(parse_redis_url(url, "cache"));
}

}  // namespace devcycle::internal
