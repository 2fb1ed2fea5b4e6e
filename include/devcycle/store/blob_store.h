// File storage: content-addressed blobs for task artifacts (build outputs,
// reports, release bundles).
//
// A blob is named by the SHA-256 of its bytes ("sha256:<64 hex>"), so
// storing the same bytes twice stores them once, and a name can never be a
// path: the local backend derives every file name from a checked digest,
// never from input. Writes are atomic (temp file, fsync, rename).
//
// Thread-safety: a BlobStore may be used from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace devcycle {

struct BlobStoreOptions {
  std::uint64_t max_blob_bytes = 100ull * 1024 * 1024;
};

struct BlobInfo {
  std::string digest;  // "sha256:<64 lowercase hex>"
  std::uint64_t size = 0;
  // When it was last stored (a put() of the same bytes renews it), in
  // microseconds since the epoch; a cleaner leaves recent blobs alone.
  std::int64_t stored_at = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Opens file:///absolute/dir or file://./relative/dir (made when missing).
  // Throws Error{kInvalidArgument} naming the URL, kUnavailable when the
  // directory cannot be made or written.
  static std::unique_ptr<BlobStore> open(const std::string& url, BlobStoreOptions options = {});

  // Stores `bytes`; kResourceExhausted over max_blob_bytes.
  virtual BlobInfo put(std::string_view bytes) = 0;
  // kNotFound for an unknown digest, kInvalidArgument naming "digest" for a
  // malformed one.
  virtual std::string get(std::string_view digest) = 0;
  virtual std::optional<BlobInfo> stat(std::string_view digest) = 0;
  // Removes it; returns whether it existed.
  virtual bool remove(std::string_view digest) = 0;
};

// "sha256:<hex>" of `bytes`.
std::string blob_digest(std::string_view bytes);

}  // namespace devcycle
