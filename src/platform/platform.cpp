#include "devcycle/platform/platform.h"

#include <mutex>
#include <optional>

#include "common/url.h"
#include "devcycle/common/error.h"
#include "devcycle/version.h"
#include "messaging/bus_url.h"
#include "platform/operations.h"

namespace devcycle {

struct Platform::Impl {
  PlatformOptions options;
  Logger logger;
  std::unique_ptr<Database> database;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<SecretStore> secrets;  // before the engine, which uses it
  // Built at the first identity() call: its password hasher costs a hash
  // at start, which an embedder that never logs anybody in should not pay.
  std::mutex identity_mu;
  std::unique_ptr<Identity> identity;
  std::unique_ptr<BlobStore> blobs;  // likewise
  std::unique_ptr<Registry> registry;
  std::unique_ptr<WorkflowCatalog> workflows;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<AgentMonitor> monitor;
  std::unique_ptr<MessageBus> bus;
  std::unique_ptr<AgentMessages> messages;
  std::unique_ptr<internal::PlatformMetrics> engine_metrics;
  std::unique_ptr<internal::RetentionSweeper> retention;  // when options.retention > 0
};

Platform::Platform(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Platform::~Platform() {
  if (!impl_) return;
  impl_->retention.reset();  // stops its thread first: it uses the engine
  impl_->engine_metrics.reset();
  impl_->monitor.reset();  // stops its thread before what it uses goes away
  impl_->messages.reset();
  impl_->engine.reset();  // its relay and completion subscription use the bus
  impl_->bus.reset();     // which stops its own subscription threads
  impl_->workflows.reset();
  impl_->registry.reset();
  impl_->identity.reset();
  if (impl_->database) impl_->database->close();
}

std::unique_ptr<Platform> Platform::open(PlatformOptions options) {
  validate_options(options);
  if (options.retention.count() < 0 || options.retention_sweep.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "retention: must not be negative, and retention_sweep must be positive");
  }
  if (!options.clock) options.clock = SystemClock::instance();
  if (!options.log_sink) options.log_sink = std::make_shared<JsonLinesSink>();
  if (!options.metrics) options.metrics = std::make_shared<MetricsRegistry>();

  auto impl = std::make_unique<Impl>();
  impl->logger =
      Logger("devcycle", options.log_sink, parse_log_level(options.log_level), options.clock);
  options.metrics
      ->gauge("build_info", "DevCycle build information", {{"version", DEVCYCLE_VERSION_STRING}})
      .set(1);

  DatabaseOptions db_options = options.database_options;
  if (!db_options.metrics) db_options.metrics = options.metrics;
  impl->database = Database::open(options.database, db_options);
  CacheOptions cache_options;
  cache_options.clock = options.clock;
  impl->cache = Cache::open(options.cache, cache_options);
  if (options.heartbeat_timeout.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "heartbeat_timeout: must be positive");
  }
  if (options.monitor_interval.count() < 0) {
    throw Error(ErrorCode::kInvalidArgument, "monitor_interval: must not be negative");
  }
  if (!options.master_key.empty()) {
    impl->secrets =
        std::make_unique<SecretStore>(*impl->database, options.master_key, options.clock);
  }
  if (!options.blob_store.empty()) impl->blobs = BlobStore::open(options.blob_store);
  RegistryOptions registry_options;
  registry_options.max_agents_per_owner = options.max_agents_per_owner;
  registry_options.clock = options.clock;
  registry_options.heartbeat_timeout = options.heartbeat_timeout;
  registry_options.secrets = impl->secrets.get();
  impl->registry = std::make_unique<Registry>(*impl->database, registry_options);
  impl->workflows = std::make_unique<WorkflowCatalog>(*impl->database, impl->registry.get(),
                                                      options.clock, impl->secrets.get());
  BusOptions bus_options;
  bus_options.clock = options.clock;
  impl->bus = MessageBus::open(options.bus, *impl->database, bus_options);
  const bool kafka = internal::check_bus_url(options.bus, "bus") == internal::BusKind::kKafka;
  const bool publish = options.publish_events.value_or(kafka);
  EngineOptions engine_options;
  engine_options.clock = options.clock;
  // The engine talks to the bus — events out, bus: agents' assignments and
  // completions — when it is shared with other processes (kafka://) or asked
  // to publish: on the embedded default nothing else could read it, and its
  // completion subscription would only poll the database while idle.
  if (kafka || publish) engine_options.bus = impl->bus.get();
  engine_options.event_topic = publish ? "devcycle.events" : "";
  engine_options.workers = options.engine_workers;
  engine_options.max_active_runs_per_owner = options.max_active_runs_per_owner;
  engine_options.secrets = impl->secrets.get();
  engine_options.processes = options.processes;
  engine_options.blobs = impl->blobs.get();
  engine_options.capability_rate_limits = options.capability_rate_limits;
  engine_options.cache = impl->cache.get();
  impl->engine =
      std::make_unique<Engine>(*impl->database, *impl->registry, *impl->workflows, engine_options);
  impl->messages = std::make_unique<AgentMessages>(*impl->database, *impl->registry, options.clock,
                                                   publish ? "devcycle.messages" : "");
  if (options.monitor_interval.count() > 0) {
    impl->monitor = std::make_unique<AgentMonitor>(*impl->registry, options.monitor_interval);
  }
  impl->engine_metrics =
      std::make_unique<internal::PlatformMetrics>(*options.metrics, *impl->engine, *impl->database);
  if (options.retention.count() > 0) {
    impl->retention = std::make_unique<internal::RetentionSweeper>(
        *impl->engine, *options.clock, impl->logger.named("retention"), options.retention,
        options.retention_sweep);
  }

  impl->logger.info("platform opened", {{"database", internal::redact_url(options.database)},
                                        {"bus", internal::redact_url(options.bus)},
                                        {"cache", internal::redact_url(options.cache)},
                                        {"version", DEVCYCLE_VERSION_STRING}});
  impl->options = std::move(options);
  return std::unique_ptr<Platform>(new Platform(std::move(impl)));
}

Database& Platform::database() noexcept { return *impl_->database; }
Registry& Platform::registry() noexcept { return *impl_->registry; }
WorkflowCatalog& Platform::workflows() noexcept { return *impl_->workflows; }
Engine& Platform::engine() noexcept { return *impl_->engine; }
Cache& Platform::cache() noexcept { return *impl_->cache; }
SecretStore* Platform::secrets() noexcept { return impl_->secrets.get(); }
Identity& Platform::identity() {
  std::lock_guard lock(impl_->identity_mu);
  if (!impl_->identity) {
    const auto& o = impl_->options;
    if (o.master_key.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "master_key: the identity services need a platform opened with a master key");
    }
    IdentityOptions identity_options;
    identity_options.argon2_memory_bytes = o.argon2_memory_bytes;
    identity_options.credential_failures_per_address = o.credential_failures_per_address;
    identity_options.clock = o.clock;
    impl_->identity =
        std::make_unique<Identity>(*impl_->database, *impl_->cache, o.master_key, identity_options);
  }
  return *impl_->identity;
}
Scoped Platform::as(Principal principal) {
  // A password an admin reset is to be changed before anything else
  // (Identity::change_password is not behind this facade). Identity read the
  // account's state when it made the principal: no second read here.
  if (principal.must_change_password) {
    throw Error(ErrorCode::kPermissionDenied,
                "password: an admin reset it; change it before doing anything else");
  }
  return Scoped(*this, std::move(principal));
}
BlobStore* Platform::blobs() noexcept { return impl_->blobs.get(); }
MessageBus& Platform::bus() noexcept { return *impl_->bus; }
AgentMessages& Platform::messages() noexcept { return *impl_->messages; }
const Logger& Platform::logger() const noexcept { return impl_->logger; }
MetricsRegistry& Platform::metrics() noexcept { return *impl_->options.metrics; }
const Clock& Platform::clock() const noexcept { return *impl_->options.clock; }
const PlatformOptions& Platform::options() const noexcept { return impl_->options; }

}  // namespace devcycle
