#include "fair_queue.h"

#include <cmath>
#include <iterator>

namespace devcycle::server {

FairQueue::FairQueue(Options options, Clock clock) : options_(options), clock_(std::move(clock)) {
  if (options_.capacity < 1) options_.capacity = 1;
  if (options_.half_life.count() < 1) options_.half_life = std::chrono::milliseconds(1);
}

double FairQueue::decayed(const Demand& d, std::chrono::steady_clock::time_point now) const {
  const double elapsed = std::chrono::duration<double, std::milli>(now - d.at).count();
  if (elapsed <= 0) return d.value;
  return d.value * std::exp2(-elapsed / static_cast<double>(options_.half_life.count()));
}

void FairQueue::forget_quiet(std::chrono::steady_clock::time_point now) {
  // Addresses that have gone quiet first; if a spray of addresses still
  // leaves too many, forget them all: every address is then new, and the
  // queue is plain first-come, first-served until demand builds again.
  for (auto it = demand_.begin(); it != demand_.end();) {
    it = decayed(it->second, now) < 0.5 ? demand_.erase(it) : std::next(it);
  }
  if (demand_.size() >= options_.max_addresses) demand_.clear();
}

FairQueue::Pushed FairQueue::push(const std::string& address, Job run, Job refuse) {
  Pushed out;
  std::lock_guard lock(mu_);
  const auto now = clock_();
  auto found = demand_.find(address);
  if (found == demand_.end()) {
    if (demand_.size() >= options_.max_addresses) forget_quiet(now);
    found = demand_.emplace(address, Demand{0, now}).first;
  }
  auto& d = found->second;
  const double priority = decayed(d, now);
  d.value = priority + 1;  // this request counts, whatever becomes of it
  d.at = now;

  if (waiting_.size() >= options_.capacity) {
    auto heaviest = std::prev(waiting_.end());
    if (!(priority < heaviest->first.first)) {
      out.refused = std::move(refuse);
      return out;
    }
    out.refused = std::move(heaviest->second.refuse);
    out.displaced = true;
    waiting_.erase(heaviest);
  }
  waiting_.emplace(std::make_pair(priority, next_seq_++),
                   Waiting{std::move(run), std::move(refuse)});
  out.queued = true;
  return out;
}

FairQueue::Job FairQueue::pop() {
  std::lock_guard lock(mu_);
  if (waiting_.empty()) return {};
  auto first = waiting_.begin();
  Job job = std::move(first->second.run);
  waiting_.erase(first);
  return job;
}

std::size_t FairQueue::size() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

std::size_t FairQueue::remembered() const {
  std::lock_guard lock(mu_);
  return demand_.size();
}

double FairQueue::demand(const std::string& address) const {
  std::lock_guard lock(mu_);
  const auto found = demand_.find(address);
  return found == demand_.end() ? 0 : decayed(found->second, clock_());
}

}  // namespace devcycle::server
