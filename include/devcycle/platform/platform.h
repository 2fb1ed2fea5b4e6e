// The Platform wires DevCycle together: one Database, one Cache, the logger,
// the metrics registry and the clock, each chosen by PlatformOptions.
//
// Platform::open({}) runs on the embedded defaults with no external service:
// a SQLite file ./devcycle.db, the in-process bus and the in-memory cache.
// The agent registry hangs off it, with a monitor thread that marks agents
// offline after missed heartbeats; the workflow engine, the message bus and
// direct agent messages too; with a master key, the identity services.
//
// Thread-safety: every accessor may be called from any thread; the parts
// returned are themselves thread-safe.
#pragma once

#include <memory>

#include "devcycle/auth/identity.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/cache/cache.h"
#include "devcycle/common/clock.h"
#include "devcycle/messaging/agent_messages.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/observability/logger.h"
#include "devcycle/observability/metrics.h"
#include "devcycle/platform/config.h"
#include "devcycle/registry/registry.h"
#include "devcycle/store/blob_store.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/workflow.h"

namespace devcycle {

class Scoped;

class Platform {
 public:
  // Validates `options`, opens the database (applying migrations) and the
  // cache. Throws Error{kInvalidArgument} naming a bad setting, or what
  // Database::open and Cache::open throw.
  static std::unique_ptr<Platform> open(PlatformOptions options = {});
  ~Platform();
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  Database& database() noexcept;
  Registry& registry() noexcept;
  WorkflowCatalog& workflows() noexcept;
  Engine& engine() noexcept;
  Cache& cache() noexcept;
  // The secrets, sealed under PlatformOptions::master_key; null without one.
  SecretStore* secrets() noexcept;
  // Users, tokens, API keys, sessions and the audit log (identity.h). Throws
  // Error{kInvalidArgument} naming master_key when the platform has none.
  Identity& identity();
  // The authorizing facade (scoped.h): every call through it is made for
  // `principal` and allowed only as the authorization matrix says. The
  // accessors above are for trusted in-process use and check nothing.
  // Throws Error{kPermissionDenied} for a principal whose password an admin
  // reset (Principal::must_change_password).
  Scoped as(Principal principal);
  // The artifacts' store (PlatformOptions::blob_store); null without one.
  BlobStore* blobs() noexcept;
  // The message bus named by PlatformOptions::bus, and direct messages
  // between agents.
  MessageBus& bus() noexcept;
  AgentMessages& messages() noexcept;
  const Logger& logger() const noexcept;
  MetricsRegistry& metrics() noexcept;
  const Clock& clock() const noexcept;
  // The resolved options (URLs as given, injected parts filled in).
  const PlatformOptions& options() const noexcept;

 private:
  struct Impl;
  explicit Platform(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle

#include "devcycle/platform/scoped.h"  // Platform::as returns a Scoped
