#include "devcycle/store/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {

namespace {

namespace fs = std::filesystem;

void check_digest(std::string_view d) {
  const bool ok = d.size() == 71 && d.starts_with("sha256:") &&
                  d.find_first_not_of("0123456789abcdef", 7) == std::string_view::npos;
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument, "digest: must be sha256: and 64 lowercase hex digits");
  }
}

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class FileBlobStore final : public BlobStore {
 public:
  FileBlobStore(fs::path root, BlobStoreOptions options)
      : root_(std::move(root)), options_(options) {
    std::error_code ec;
    fs::create_directories(root_ / "sha256", ec);
    fs::create_directories(root_ / "tmp", ec);
    // Artifacts may hold what tasks produced from secrets: the server's user only.
    for (const auto& d : {root_, root_ / "sha256", root_ / "tmp"}) {
      std::error_code ignored;
      fs::permissions(d, fs::perms::owner_all, fs::perm_options::replace, ignored);
    }
    if (ec || ::access((root_ / "tmp").c_str(), W_OK) != 0) {
      throw Error(ErrorCode::kUnavailable,
                  "blob store " + root_.string() + ": cannot make or write the directory");
    }
  }

  BlobInfo put(std::string_view bytes) override {
    if (bytes.size() > options_.max_blob_bytes) {
      throw Error(ErrorCode::kResourceExhausted,
                  "blob: " + std::to_string(bytes.size()) + " bytes, more than the " +
                      std::to_string(options_.max_blob_bytes) + " allowed");
    }
    BlobInfo info{blob_digest(bytes), bytes.size(), now_micros()};
    const auto final_path = path_of(info.digest);
    if (fs::exists(final_path)) {
      // Content-addressed: already there. Renew it, so that a cleaner that
      // just found it unreferenced leaves it to the row about to name it.
      std::error_code ec;
      fs::last_write_time(final_path, fs::file_time_type::clock::now(), ec);
      return info;
    }
    if (fs::create_directories(final_path.parent_path())) {
      std::error_code ignored;
      fs::permissions(final_path.parent_path(), fs::perms::owner_all, fs::perm_options::replace,
                      ignored);
    }
    const auto tmp = root_ / "tmp" / new_uuid_v7();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("cannot create " + tmp.string());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        fail("cannot write " + tmp.string());
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot sync " + tmp.string());
    }
    ::close(fd);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
      ::unlink(tmp.c_str());
      fail("cannot move a blob into place");
    }
    return info;
  }

  std::string get(std::string_view digest) override {
    check_digest(digest);
    std::ifstream in(path_of(digest), std::ios::binary);
    if (!in) throw Error(ErrorCode::kNotFound, "blob " + std::string(digest) + " not found");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  std::optional<BlobInfo> stat(std::string_view digest) override {
    check_digest(digest);
    std::error_code ec;
    const auto path = path_of(digest);
    const auto size = fs::file_size(path, ec);
    if (ec) return std::nullopt;
    const auto written = fs::last_write_time(path, ec);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::file_clock::to_sys(written).time_since_epoch())
                            .count();
    return BlobInfo{std::string(digest), size, micros};
  }

  bool remove(std::string_view digest) override {
    check_digest(digest);
    std::error_code ec;
    return fs::remove(path_of(digest), ec);
  }

 private:
  // Only ever from a checked digest: sha256/ab/<rest>.
  fs::path path_of(std::string_view digest) const {
    const auto hex = std::string(digest.substr(7));
    return root_ / "sha256" / hex.substr(0, 2) / hex.substr(2);
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::kUnavailable,
                "blob store " + root_.string() + ": " + what + ": " + std::strerror(errno));
  }

  fs::path root_;
  BlobStoreOptions options_;
};

}  // namespace

std::string blob_digest(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::unique_ptr<BlobStore> BlobStore::open(const std::string& url, BlobStoreOptions options) {
  if (!url.starts_with("file://") || url.size() == 7) {
    throw Error(ErrorCode::kInvalidArgument,
                "blob_store: \"" + url + "\" is not file:///absolute/dir or file://./relative/dir");
  }
  if (options.max_blob_bytes == 0) {
    throw Error(ErrorCode::kInvalidArgument, "BlobStoreOptions.max_blob_bytes: must be positive");
  }
  return std::make_unique<FileBlobStore>(fs::path(url.substr(7)), options);
}

}  // namespace devcycle
