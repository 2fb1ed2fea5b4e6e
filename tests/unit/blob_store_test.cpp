// The local-filesystem BlobStore: content addressing, atomic writes, limits,
// and names that can never become paths.
#include "devcycle/store/blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "devcycle/common/error.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

TEST(BlobStoreTest, ContentAddressedRoundTrip) {
  testing::TempDir dir;
  auto blobs = BlobStore::open("file://" + dir.path().string() + "/blobs");
  const std::string bytes("release\0bundle", 14);
  const auto a = blobs->put(bytes);
  EXPECT_EQ(a.digest, blob_digest(bytes));
  EXPECT_EQ(a.digest.substr(0, 7), "sha256:");
  EXPECT_EQ(a.size, 14u);
  EXPECT_EQ(blobs->get(a.digest), bytes);
  EXPECT_EQ(blobs->put(bytes).digest, a.digest);  // stored once
  EXPECT_EQ(blobs->stat(a.digest)->size, 14u);
  // sha256("") is well known.
  EXPECT_EQ(blob_digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Nothing left in tmp/ after writes.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "blobs" / "tmp"));
  EXPECT_TRUE(blobs->remove(a.digest));
  EXPECT_FALSE(blobs->remove(a.digest));
  EXPECT_DEVCYCLE_ERROR(blobs->get(a.digest), ErrorCode::kNotFound, "blob");
  EXPECT_FALSE(blobs->stat(a.digest).has_value());
}

// Issue #20: artifacts were created 0640 in directories of 0755 less the
// umask; they may hold what tasks made from secrets.
TEST(BlobStoreTest, FilesAndDirectoriesArePrivateToTheServersUser) {
  testing::TempDir dir;
  auto blobs = BlobStore::open("file://" + dir.path().string() + "/blobs");
  const auto a = blobs->put("artifact bytes");
  namespace fs = std::filesystem;
  const auto hex = a.digest.substr(7);
  const auto file = dir.path() / "blobs" / "sha256" / hex.substr(0, 2) / hex.substr(2);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  for (const auto& d : {dir.path() / "blobs", dir.path() / "blobs" / "sha256",
                        dir.path() / "blobs" / "tmp", file.parent_path()}) {
    EXPECT_EQ(fs::status(d).permissions() & fs::perms::all, fs::perms::owner_all) << d;
  }
}

TEST(BlobStoreTest, DigestsNeverEscapeTheRoot) {
  testing::TempDir dir;
  auto blobs = BlobStore::open("file://" + dir.path().string());
  for (const char* bad : {"sha256:../../../../etc/passwd", "../x", "sha256:ABCDEF", "",
                          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
                          "md5:d41d8cd98f00b204e9800998ecf8427e"}) {
    SCOPED_TRACE(bad);
    EXPECT_DEVCYCLE_ERROR(blobs->get(bad), ErrorCode::kInvalidArgument, "digest");
    EXPECT_DEVCYCLE_ERROR(blobs->remove(bad), ErrorCode::kInvalidArgument, "digest");
  }
}

TEST(BlobStoreTest, SizeLimitAndBadUrls) {
  testing::TempDir dir;
  BlobStoreOptions o;
  o.max_blob_bytes = 8;
  auto blobs = BlobStore::open("file://" + dir.path().string(), o);
  EXPECT_DEVCYCLE_ERROR(blobs->put("123456789"), ErrorCode::kResourceExhausted, "9 bytes");
  EXPECT_NO_THROW(blobs->put("12345678"));
  EXPECT_DEVCYCLE_ERROR(BlobStore::open("s3://bucket"), ErrorCode::kInvalidArgument, "blob_store");
  EXPECT_DEVCYCLE_ERROR(BlobStore::open("file:///proc/no/such/dir"), ErrorCode::kUnavailable,
                        "blob store");
}

}  // namespace
}  // namespace devcycle
