// Authentication costs.
//
//   build/dev/bench/auth_bench
//
// BM_Argon2idHash: time to hash one password with argon2id at the default
// parameters (64 MiB, 3 passes) and at OWASP's minimum (19 MiB, 2 passes).
// BM_VerifyAccessToken: JWT access-token verifications per second on one
// thread (counter verifications_per_second), HS256 and EdDSA, cycling over
// 1,024 distinct tokens. Two paths, named by the `warm` argument:
//   warm:0  cold: TokenService's memo of verified tokens is off
//           (TokenOptions::verified_memo = 0), so every verification checks
//           the signature and the claims, then the revocation list;
//   warm:1  warm: the memo is on and holds every token (a server sees the
//           same token on each request of a session): expiry and the
//           revocation list only.
// Neither includes the account-state lookup Identity::authenticate adds.
#include <benchmark/benchmark.h>
#include <devcycle/auth/auth.h>
#include <devcycle/auth/tokens.h>

#include <string>
#include <vector>

namespace {

void BM_Argon2idHash(benchmark::State& state) {
  devcycle::Argon2Options options;
  options.memory_bytes = static_cast<std::size_t>(state.range(0)) * 1024 * 1024;
  options.passes = static_cast<unsigned long long>(state.range(1));
  auto hasher = devcycle::make_argon2id_hasher(options);
  for (auto _ : state) benchmark::DoNotOptimize(hasher->hash("tolerable mule 9"));
  state.counters["hashes_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Argon2idHash)
    ->ArgNames({"mib", "passes"})
    ->Args({64, 3})
    ->Args({19, 2})
    ->Unit(benchmark::kMillisecond);

void BM_VerifyAccessToken(benchmark::State& state) {
  auto db = devcycle::Database::open("sqlite::memory:");
  auto cache = devcycle::Cache::open("memory://");
  devcycle::TokenOptions options;
  options.algorithm =
      state.range(0) == 0 ? devcycle::SigningAlgorithm::kHS256 : devcycle::SigningAlgorithm::kEdDSA;
  const bool warm = state.range(1) != 0;
  if (!warm) options.verified_memo = 0;
  devcycle::TokenService tokens(*db, *cache, devcycle::generate_master_key_hex(), options);
  // Distinct tokens (different users and jtis).
  std::vector<std::string> issued;
  for (int i = 0; i < 1024; ++i) {
    devcycle::User user;
    user.id = "0190c8a0-0000-7000-8000-" + std::to_string(100000000000 + i);
    user.role = devcycle::Role::kDeveloper;
    issued.push_back(tokens.issue(user).access_token);
  }
  if (warm) {
    for (const auto& t : issued) tokens.verify_access(t);  // into the memo
  }
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tokens.verify_access(issued[next]));
    next = (next + 1) % issued.size();
  }
  state.counters["verifications_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VerifyAccessToken)
    ->ArgNames({"eddsa", "warm"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1});

}  // namespace

BENCHMARK_MAIN();
