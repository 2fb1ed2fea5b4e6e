// artifacts: what a run's tasks stored in the blob store, by content digest
// (the blobs themselves are the BlobStore's).
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "devcycle/workflow/engine.h"
#include "workflow/store/deferred_writes.h"

namespace devcycle::internal {

class ArtifactTable {
 public:
  explicit ArtifactTable(DeferredWrites& w) : w_(w) {}
  ArtifactTable(const ArtifactTable&) = delete;
  ArtifactTable& operator=(const ArtifactTable&) = delete;

  void insert_artifact(const Artifact& a);
  // A run's artifacts, oldest first.
  std::vector<Artifact> artifacts_of(std::string_view run_id);
  // The distinct digests a run's artifacts name (in no particular order).
  std::vector<std::string> digests_of(std::string_view run_id);
  // Whether any artifact (of any run) names the digest.
  bool digest_referenced(std::string_view digest);
  // Deletes a run's artifacts (not their blobs).
  void delete_of_run(std::string_view run_id);

 private:
  DeferredWrites& w_;
};

}  // namespace devcycle::internal
