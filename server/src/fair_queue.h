// FairQueue: the waiting room of the heavy lane, where each request costs a
// password hash. Requests are served by how much their client address asked
// for recently — each address's demand counts its requests (queued, run or
// refused) and halves every `half_life` — lowest first, then in arrival
// order. When the room is full, a newcomer whose address asked for less than
// that of the most demanding waiting request takes that one's place, and
// that one is refused. So a flood, from one address or from many, fills only
// places that a quiet address does not need: once the flood's addresses have
// asked, a single login waits behind the requests already running and the
// first burst's, not behind the flood. `address` is the caller's group (an
// IPv6 /64, address_group()), so one host cannot be many newcomers.
//
// Thread-safety: every member may be called from any thread; jobs run
// outside its lock. Errors: none of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace devcycle::server {

class FairQueue {
 public:
  using Job = std::function<void()>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Options {
    std::size_t capacity = 32;                    // waiting requests (not counting running ones)
    std::chrono::milliseconds half_life{10'000};  // how fast an address's demand fades
    std::size_t max_addresses = 10'000;           // addresses whose demand is remembered
  };

  explicit FairQueue(Options options, Clock clock = &std::chrono::steady_clock::now);

  struct Pushed {
    bool queued = false;     // `run` has a place
    bool displaced = false;  // ... taken from a waiter: the queue did not grow
    Job refused;             // to call now (outside any lock): the newcomer's
                             // own `refuse`, or that of the request it displaced
  };
  // Offers `run` from `address`; `refuse` answers it if it has or loses no place.
  Pushed push(const std::string& address, Job run, Job refuse);
  // The next job to run; empty when none waits.
  Job pop();
  std::size_t size() const;
  // The demand `address` has now (tests, metrics).
  double demand(const std::string& address) const;
  // How many addresses' demand it remembers (at most Options::max_addresses).
  std::size_t remembered() const;

 private:
  struct Waiting {
    Job run;
    Job refuse;
  };
  struct Demand {
    double value = 0;
    std::chrono::steady_clock::time_point at;
  };

  double decayed(const Demand& d, std::chrono::steady_clock::time_point now) const;
  void forget_quiet(std::chrono::steady_clock::time_point now);

  Options options_;
  Clock clock_;
  mutable std::mutex mu_;
  std::uint64_t next_seq_ = 0;
  std::map<std::pair<double, std::uint64_t>, Waiting> waiting_;  // (demand, arrival) → job
  std::unordered_map<std::string, Demand> demand_;
};

}  // namespace devcycle::server
