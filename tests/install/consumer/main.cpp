// A program that knows DevCycle only through its installed headers and library.
#include <devcycle/devcycle.h>

#include <cstdio>

int main() {
  devcycle::PlatformOptions options;
  options.database = "sqlite::memory:";
  options.log_level = "error";
  auto platform = devcycle::Platform::open(options);
  auto& db = platform->database();
  db.write([](devcycle::Txn& t) {
    t.execute_script("CREATE TABLE notes (id TEXT PRIMARY KEY)");
    for (int i = 0; i < 3; ++i)
      t.execute("INSERT INTO notes VALUES ($1)", {devcycle::new_uuid_v7()});
  });
  const auto n = db.read(
      [](devcycle::Txn& t) { return t.query("SELECT COUNT(*) FROM notes")[0][0].as_int(); });
  std::printf("devcycle %s: %lld rows\n", devcycle::version(), static_cast<long long>(n));
  return n == 3 ? 0 : 1;
}
