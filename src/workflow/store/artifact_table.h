// artifacts: what a run's tasks stored in the blob store, by content digest
// (the blobs themselves are the BlobStore's).
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "devcycle/engine.h"
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

 private:
  DeferredWrites& w_;
};

}  // namespace devcycle::internal
