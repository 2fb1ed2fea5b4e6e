#include "workflow/store/artifact_table.h"

#include <cstdint>

namespace devcycle::internal {

void ArtifactTable::insert_artifact(const Artifact& a) {
  w_.any().execute(
      "INSERT INTO artifacts (id, run_id, task_id, task_key, attempt, name, digest, size, "
      "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      {a.id, a.run_id, a.task_id, a.task_key, a.attempt, a.name, a.digest,
       static_cast<std::int64_t>(a.size), a.created_at});
}

std::vector<Artifact> ArtifactTable::artifacts_of(std::string_view run_id) {
  std::vector<Artifact> out;
  for (const auto& r :
       w_.any().query("SELECT id, run_id, task_id, task_key, attempt, name, digest, size, "
                      "created_at FROM artifacts WHERE run_id = $1 ORDER BY id",
                      {run_id})) {
    out.push_back({r[0].as_text(), r[1].as_text(), r[2].as_text(), r[3].as_text(),
                   static_cast<int>(r[4].as_int()), r[5].as_text(), r[6].as_text(),
                   static_cast<std::uint64_t>(r[7].as_int()), r[8].as_int()});
  }
  return out;
}

std::vector<std::string> ArtifactTable::digests_of(std::string_view run_id) {
  std::vector<std::string> out;
  for (const auto& r :
       w_.any().query("SELECT DISTINCT digest FROM artifacts WHERE run_id = $1", {run_id}))
    out.push_back(r[0].as_text());
  return out;
}

bool ArtifactTable::digest_referenced(std::string_view digest) {
  return !w_.any().query("SELECT 1 FROM artifacts WHERE digest = $1 LIMIT 1", {digest}).empty();
}

void ArtifactTable::delete_of_run(std::string_view run_id) {
  w_.any().execute("DELETE FROM artifacts WHERE run_id = $1", {run_id});
}

}  // namespace devcycle::internal
