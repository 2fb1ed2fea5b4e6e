// Driver for the message-bus kill -9 test: publishes, or consumes and
// records what it handled.
//
//   bus_crash_driver DB publish FROM N publishes messages "FROM".."FROM+N-1" in batches of 50
//   bus_crash_driver DB consume LOG    fetches for group "g", appends each payload to LOG
//                                      (fsync) before acknowledging it; exits 0 when a
//                                      fetch finds nothing and nothing is pending
//   bus_crash_driver URL hold TOPIC GROUP N LOG
//                                      on the bus at URL (kafka://), fetches N messages,
//                                      appends their payloads to LOG (fsync) and waits
//                                      without acknowledging them, to be killed
#include <devcycle/devcycle.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bus_crash_driver DB publish FROM N | DB consume LOG\n");
    return 2;
  }
  const std::string mode = argv[2];
  try {
    if (mode == "hold") {
      if (argc != 7) return 2;
      auto scratch = devcycle::Database::open("sqlite::memory:");
      auto bus = devcycle::MessageBus::open(argv[1], *scratch);
      const int want = std::atoi(argv[5]);
      const int log = ::open(argv[6], O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log < 0) return 3;
      devcycle::ConsumeOptions o;
      o.visibility_timeout = std::chrono::minutes(10);
      for (int got = 0; got < want;) {
        for (const auto& d : bus->fetch(argv[3], argv[4], want - got, o)) {
          const std::string line = d.message.payload + "\n";
          if (::write(log, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 4;
          ++got;
        }
      }
      ::fsync(log);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    auto db = devcycle::Database::open(std::string("sqlite://") + argv[1]);
    auto bus = devcycle::MessageBus::open("inproc://", *db);
    if (mode == "publish") {
      if (argc != 5) return 2;
      const int from = std::atoi(argv[3]);
      const int end = from + std::atoi(argv[4]);
      for (int start = from; start < end; start += 50) {
        std::vector<devcycle::Message> batch;
        for (int i = start; i < std::min(end, start + 50); ++i)
          batch.push_back({"work", "key-" + std::to_string(i % 7), {}, std::to_string(i)});
        bus->publish_batch(std::move(batch)).get();
      }
      return 0;
    }
    const int log = ::open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log < 0) return 3;
    devcycle::ConsumeOptions o;
    o.visibility_timeout = std::chrono::milliseconds(300);
    o.max_deliveries = 1000;
    while (true) {
      const auto batch = bus->fetch("work", "g", 20, o);
      if (batch.empty()) {
        const bool pending = db->read([](devcycle::Txn& t) {
          return t.query("SELECT COUNT(*) FROM bus_pending")[0][0].as_int() > 0;
        });
        if (!pending) return 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      for (const auto& d : batch) {
        const std::string line = d.message.payload + "\n";
        if (::write(log, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 4;
        ::fsync(log);
        bus->ack(d);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bus_crash_driver: %s\n", e.what());
    return 1;
  }
}
