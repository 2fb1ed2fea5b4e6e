// The HTTP/1.1 transport of `devcycle serve`: Boost.Beast on Asio, N
// threads, optional TLS. It knows nothing of routes: it reads a request
// within the limits, hands a plain HttpRequest to the handler and writes the
// HttpResponse back. Beast stays inside http_server.cpp so that the route
// code compiles without it.
//
// Limits that defeat slow or greedy clients: a header limit (431), a body
// limit that counts chunked bodies too (413), a read timeout for a whole
// request once its first byte arrived, an idle timeout between keep-alive
// requests, and a connection cap (connections over it are closed at once).
// Requests the classifier puts in the heavy lane (logins: argon2) run on a
// small pool of their own with a bounded queue, so that a flood of them
// cannot take the I/O threads from other routes; when that queue is full the
// answer is 503 with Retry-After.
//
// Thread-safety: start(), shutdown() and wait() from one controlling thread;
// the handler is called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devcycle::server {

struct HttpRequest {
  std::string method;                                        // "GET"
  std::string target;                                        // "/api/v1/runs?limit=5"
  std::string path;                                          // "/api/v1/runs"
  std::string query;                                         // "limit=5"
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string client_address;
  bool tls = false;

  // The first header of that (lowercase) name, or null.
  const std::string* header(std::string_view lowercase_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Where a request runs: on the I/O thread (kInline), on the small pool for
// CPU-heavy work such as password hashing (kHeavy), or on the pool for
// requests that wait, such as long-polling claims (kWait), so that neither
// holds up the I/O threads.
enum class Lane { kInline, kHeavy, kWait };

// Where a request goes, or — before it takes a place in any queue — the
// answer that refuses it.
struct Admission {
  Lane lane = Lane::kInline;
  std::optional<HttpResponse> refusal;
  // kHeavy: whose share of the heavy lane it takes (FairQueue); empty: the
  // client's address as it came.
  std::string share;
};

// One WebSocket connection, as the application sees it. send() never blocks
// and may be called from any thread: it queues a text frame. A connection
// whose queue is full (HttpServerOptions::ws_queue_limit) drops frames, and
// once its queue has drained tells the peer how many:
// {"type": "dropped", "count": N}. Memory never grows without bound.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  virtual void send(std::string text) = 0;
  virtual void close() = 0;
  // Closes with 1008 (policy violation) and `reason` (at most 123 bytes).
  virtual void close_for_policy(std::string reason) = 0;
};

// The application's side of one accepted connection. Called on an I/O
// thread: it must not block.
class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void on_message(const std::string& text) = 0;
  virtual void on_close() = 0;
};

// What the application decides for an upgrade request: a refusal (an HTTP
// answer), or the handler of the accepted connection.
struct WsDecision {
  std::optional<HttpResponse> refusal;
  std::shared_ptr<WsHandler> handler;
};
using WsUpgrade = std::function<WsDecision(const HttpRequest&, std::shared_ptr<WsConnection>)>;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  int threads = 2;
  int heavy_threads = 1;  // the pool for Lane::kHeavy
  int heavy_queue = 32;   // heavy requests waiting (fair per address, see FairQueue) before 503
  int wait_threads = 16;  // the pool for Lane::kWait: requests that may wait
  int wait_queue = 256;   // waiting requests before 503
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  int max_connections = 1024;
  std::string tls_certificate;  // PEM files; both or neither
  std::string tls_key;
  std::size_t ws_queue_limit = 1000;         // frames queued per WebSocket before dropping
  std::size_t ws_message_limit = 64 * 1024;  // largest frame a client may send
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using Classifier = std::function<Admission(const HttpRequest&)>;

  // `error_response` makes the body of the transport's own refusals (413,
  // 431, 400, 503) from a status and a detail.
  HttpServer(HttpServerOptions options, Handler handler, Classifier classifier,
             std::function<HttpResponse(int status, std::string detail)> error_response);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Upgrade requests (GET with "Upgrade: websocket") to `path` go to
  // `upgrade` instead of the handler. Before start().
  void on_websocket(std::string path, WsUpgrade upgrade);

  // Binds and starts the threads. Throws Error{kUnavailable} naming the
  // address when it cannot listen, kInvalidArgument naming the TLS file that
  // cannot be loaded.
  void start();
  // The bound port (after start()).
  std::uint16_t port() const noexcept;
  // Stops accepting, closes idle connections, lets in-flight requests finish
  // (their connections close after the response), and after `grace` closes
  // whatever is left. Returns when every thread has stopped.
  void shutdown(std::chrono::milliseconds grace);
  // Connections open now.
  int connections() const noexcept;

  struct Impl;  // internal

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace devcycle::server
