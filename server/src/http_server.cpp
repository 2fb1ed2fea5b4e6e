#include "http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "devcycle/common/error.h"
#include "fair_queue.h"

namespace devcycle::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

const std::string* HttpRequest::header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return &value;
  }
  return nullptr;
}

namespace {

// What a session needs from the server, without the session's stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection when it waits for a request; otherwise makes the
  // response in flight its last.
  virtual void close_when_idle() = 0;
  virtual void close_now() = 0;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpServerOptions options;
  Handler handler;
  Classifier classifier;
  std::function<HttpResponse(int, std::string)> error_response;
  std::string ws_path;
  WsUpgrade ws_upgrade;

  net::io_context io;
  // Keeps the I/O threads running while a request is away on the heavy pool
  // and nothing else is pending (after shutdown closed the acceptor).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::optional<ssl::context> tls;
  std::optional<net::thread_pool> heavy;
  std::optional<FairQueue> heavy_queue;  // who the heavy pool serves next
  std::optional<net::thread_pool> waits;
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;

  std::atomic<int> connections{0};
  std::atomic<int> waits_in_flight{0};
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::set<std::shared_ptr<SessionBase>> sessions;
  std::condition_variable drained;

  void accept();
  void add(std::shared_ptr<SessionBase> s) {
    std::lock_guard lock(sessions_mu);
    sessions.insert(std::move(s));
  }
  // A connection changes hands (HTTP to WebSocket): still one connection.
  void replace(const std::shared_ptr<SessionBase>& from, std::shared_ptr<SessionBase> to) {
    std::lock_guard lock(sessions_mu);
    sessions.erase(from);
    sessions.insert(std::move(to));
  }
  void remove(const std::shared_ptr<SessionBase>& s) {
    {
      std::lock_guard lock(sessions_mu);
      sessions.erase(s);
    }
    connections.fetch_sub(1);
    drained.notify_all();
  }
};

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

tcp::socket& lowest_socket(beast::tcp_stream& s) { return s.socket(); }
tcp::socket& lowest_socket(beast::ssl_stream<beast::tcp_stream>& s) {
  return s.next_layer().socket();
}
beast::tcp_stream& tcp_layer(beast::tcp_stream& s) { return s; }
beast::tcp_stream& tcp_layer(beast::ssl_stream<beast::tcp_stream>& s) { return s.next_layer(); }

// A WebSocket connection after its HTTP upgrade: a read loop handing text
// frames to the application, and a bounded queue of frames to write.
template <class Stream>
class WsSession : public SessionBase,
                  public WsConnection,
                  public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  // `executor`: the connection's strand, which the stream keeps when it
  // moves in, so that send() from any thread is serialised from the start.
  WsSession(std::shared_ptr<HttpServer::Impl> server, net::any_io_executor executor)
      : server_(std::move(server)), executor_(std::move(executor)) {}

  void start(Stream stream, http::request<http::string_body> req,
             std::shared_ptr<WsHandler> handler) {
    handler_ = std::move(handler);
    ws_.emplace(std::move(stream));
    tcp_layer(ws_->next_layer()).expires_never();  // the WebSocket's own timeouts from here
    ws_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_->set_option(websocket::stream_base::decorator(
        [](websocket::response_type& r) { r.set(http::field::server, "devcycle"); }));
    ws_->read_message_max(server_->options.ws_message_limit);
    auto request = std::make_shared<http::request<http::string_body>>(std::move(req));
    ws_->async_accept(*request, [self = this->shared_from_this(), request](beast::error_code ec) {
      if (ec) return self->finish();
      self->open_ = true;
      self->read();
      if (!self->queue_.empty()) self->write();
    });
  }

  void send(std::string text) override {
    net::dispatch(executor(), [self = this->shared_from_this(), text = std::move(text)]() mutable {
      if (self->finished_ || self->closing_) return;
      if (self->queue_.size() >= self->server_->options.ws_queue_limit) {
        ++self->dropped_;  // a slow reader loses frames, never the server's memory
        return;
      }
      self->queue_.push_back(std::move(text));
      if (self->open_ && !self->writing_) self->write();
    });
  }

  void close() override { close_when_idle(); }
  void close_for_policy(std::string reason) override {
    if (reason.size() > 123) reason.resize(123);  // a close frame's payload is at most 125 bytes
    net::dispatch(executor(), [self = this->shared_from_this(), reason = std::move(reason)] {
      if (self->finished_ || self->closing_) return;
      self->closing_ = true;
      if (!self->open_) return self->finish();
      self->ws_->async_close(websocket::close_reason(websocket::close_code::policy_error, reason),
                             [self](beast::error_code) { self->finish(); });
    });
  }
  void close_when_idle() override {
    net::dispatch(executor(), [self = this->shared_from_this()] {
      if (self->finished_ || self->closing_) return;
      self->closing_ = true;
      if (!self->open_) return self->finish();
      self->ws_->async_close(websocket::close_code::going_away,
                             [self](beast::error_code) { self->finish(); });
    });
  }
  void close_now() override {
    net::dispatch(executor(), [self = this->shared_from_this()] {
      beast::error_code ignored;
      if (self->ws_) lowest_socket(self->ws_->next_layer()).close(ignored);
      self->finish();
    });
  }

 private:
  const net::any_io_executor& executor() const { return executor_; }

  void read() {
    ws_->async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish();
      const std::string text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      try {
        if (self->handler_) self->handler_->on_message(text);
      } catch (...) {
        return self->finish();
      }
      self->read();
    });
  }

  void write() {
    if (queue_.empty() && dropped_ > 0) {
      queue_.push_back("{\"type\":\"dropped\",\"count\":" + std::to_string(dropped_) + "}");
      dropped_ = 0;
    }
    if (queue_.empty() || closing_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    ws_->text(true);
    ws_->async_write(net::buffer(queue_.front()),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->finish();
                       self->queue_.pop_front();
                       self->write();
                     });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    if (auto h = std::move(handler_)) h->on_close();  // breaks the handler's hold on us
    beast::error_code ignored;
    if (ws_) lowest_socket(ws_->next_layer()).close(ignored);
    server_->remove(this->shared_from_this());
  }

  std::shared_ptr<HttpServer::Impl> server_;
  net::any_io_executor executor_;
  std::optional<websocket::stream<Stream>> ws_;
  std::shared_ptr<WsHandler> handler_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::size_t dropped_ = 0;
  bool open_ = false, writing_ = false, closing_ = false, finished_ = false;
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream, std::string client, bool tls)
      : server_(std::move(server)),
        stream_(std::move(stream)),
        client_(std::move(client)),
        tls_(tls) {}

  void start() {
    server_->add(this->shared_from_this());
    net::dispatch(tcp_layer(stream_).get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        self->wait_for_request();
      } else {
        self->handshake();
      }
    });
  }

  void close_when_idle() override {
    net::dispatch(tcp_layer(stream_).get_executor(), [self = this->shared_from_this()] {
      self->last_ = true;
      if (self->idle_) self->close();
    });
  }
  void close_now() override {
    net::dispatch(tcp_layer(stream_).get_executor(),
                  [self = this->shared_from_this()] { self->close(); });
  }

 private:
  void handshake() {
    tcp_layer(stream_).expires_after(server_->options.read_timeout);
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->close();
                                self->wait_for_request();
                              });
    }
  }

  // Waits for the first byte of the next request under the idle timeout;
  // then the whole request must arrive within the read timeout.
  void wait_for_request() {
    idle_ = true;
    if (last_ || server_->stopping.load()) return close();
    if (buffer_.size() > 0) return read_request();
    tcp_layer(stream_).expires_after(server_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  void read_request() {
    idle_ = false;
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.header_limit));
    tcp_layer(stream_).expires_after(server_->options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return refuse(413, "the request body is larger than the limit of " +
                             std::to_string(server_->options.body_limit) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return refuse(431, "the request headers are larger than the limit of " +
                             std::to_string(server_->options.header_limit) + " bytes");
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return close();
    }
    if (ec) return refuse(400, "malformed HTTP request: " + ec.message());

    auto& msg = parser_->get();
    // Beast's own header limit does not see every byte of a header block that
    // arrives over several reads; count it whole here (each field as
    // "name: value\r\n").
    std::size_t header_bytes = msg.method_string().size() + msg.target().size() + 12;
    for (const auto& field : msg)
      header_bytes += field.name_string().size() + field.value().size() + 4;
    if (header_bytes > server_->options.header_limit) {
      return refuse(431, "the request headers are larger than the limit of " +
                             std::to_string(server_->options.header_limit) + " bytes");
    }
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& field : msg) {
      req.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.client_address = client_;
    req.tls = tls_;
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();

    if (server_->ws_upgrade && req.path == server_->ws_path && websocket::is_upgrade(msg))
      return upgrade(req);

    Admission admission;
    if (server_->classifier) {
      try {
        admission = server_->classifier(req);
      } catch (const std::exception&) {
        return respond(server_->error_response(500, "internal error"));
      }
    }
    if (admission.refusal) return respond(std::move(*admission.refusal));
    if (admission.lane == Lane::kInline) return respond(call(req));
    if (admission.lane == Lane::kHeavy) {
      return queue_heavy(std::move(req), admission.share.empty() ? client_ : admission.share);
    }

    auto& in_flight = server_->waits_in_flight;
    if (in_flight.fetch_add(1) >= server_->options.wait_queue) {
      in_flight.fetch_sub(1);
      return respond(busy());
    }
    net::post(*server_->waits, [self = this->shared_from_this(), req = std::move(req), &in_flight] {
      auto response = self->call(req);
      in_flight.fetch_sub(1);
      self->respond_from_pool(std::move(response));
    });
  }

  HttpResponse busy() {
    auto r = server_->error_response(503, "too many requests of this kind are in progress");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  // From a pool thread: the response goes back on the connection's strand.
  void respond_from_pool(HttpResponse response) {
    net::dispatch(tcp_layer(stream_).get_executor(),
                  [self = this->shared_from_this(), response = std::move(response)]() mutable {
                    self->respond(std::move(response));
                  });
  }

  // The heavy lane: a place in the fair queue, and one pool task to serve
  // whoever is next when a thread is free.
  void queue_heavy(HttpRequest req, const std::string& share) {
    auto self = this->shared_from_this();
    auto pushed = server_->heavy_queue->push(
        share, [self, req = std::move(req)] { self->respond_from_pool(self->call(req)); },
        [self] { self->respond_from_pool(self->busy()); });
    if (pushed.refused) pushed.refused();
    if (pushed.queued && !pushed.displaced) {  // a displaced waiter's task serves this one
      net::post(*server_->heavy, [server = server_] {
        if (auto job = server->heavy_queue->pop()) job();
      });
    }
  }

  // Hands the connection to a WebSocket session, or answers the refusal.
  void upgrade(const HttpRequest& req) {
    auto ws = std::make_shared<WsSession<Stream>>(server_, tcp_layer(stream_).get_executor());
    WsDecision decision;
    try {
      decision = server_->ws_upgrade(req, ws);
    } catch (const std::exception&) {
      decision.refusal = server_->error_response(500, "internal error");
    }
    if (decision.refusal || !decision.handler) {
      keep_alive_ = false;
      return respond(decision.refusal ? std::move(*decision.refusal)
                                      : server_->error_response(500, "internal error"));
    }
    closed_ = true;  // the socket goes on in the WebSocket session
    server_->replace(this->shared_from_this(), ws);
    ws->start(std::move(stream_), parser_->release(), std::move(decision.handler));
  }

  HttpResponse call(const HttpRequest& req) {
    try {
      return server_->handler(req);
    } catch (const std::exception& e) {
      return server_->error_response(500, "internal error");
    }
  }

  void refuse(int status, std::string detail) {
    keep_alive_ = false;
    respond(server_->error_response(status, std::move(detail)));
  }

  void respond(HttpResponse r) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_ ? version_ : 11);
    res->set(http::field::server, "devcycle");
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res->insert(name, value);
    res->body() = std::move(r.body);
    const bool keep = keep_alive_ && !last_ && !server_->stopping.load();
    res->keep_alive(keep);
    res->prepare_payload();
    tcp_layer(stream_).expires_after(server_->options.read_timeout);
    http::async_write(
        stream_, *res,
        [self = this->shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
          if (ec || !keep) return self->close();
          self->wait_for_request();
        });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    lowest_socket(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    lowest_socket(stream_).close(ignored);
    server_->remove(this->shared_from_this());
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  std::string client_;
  bool tls_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool idle_ = true;
  bool last_ = false;
  bool closed_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor->async_accept(
      net::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (ec) {
          if (self->stopping.load() || ec == net::error::operation_aborted) return;
          return self->accept();  // e.g. too many open files: keep serving the others
        }
        if (self->stopping.load()) return;
        if (self->connections.fetch_add(1) >= self->options.max_connections) {
          self->connections.fetch_sub(1);
          beast::error_code ignored;
          socket.close(ignored);
          return self->accept();
        }
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::string client = socket.remote_endpoint(ignored).address().to_string();
        if (self->tls) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
              self, beast::ssl_stream<beast::tcp_stream>(std::move(socket), *self->tls),
              std::move(client), true)
              ->start();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(self, beast::tcp_stream(std::move(socket)),
                                                       std::move(client), false)
              ->start();
        }
        self->accept();
      });
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler, Classifier classifier,
                       std::function<HttpResponse(int, std::string)> error_response)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->classifier = std::move(classifier);
  impl_->error_response = std::move(error_response);
}

void HttpServer::on_websocket(std::string path, WsUpgrade upgrade) {
  impl_->ws_path = std::move(path);
  impl_->ws_upgrade = std::move(upgrade);
}

HttpServer::~HttpServer() {
  if (!impl_->threads.empty()) shutdown(std::chrono::milliseconds(0));
}

void HttpServer::start() {
  auto& o = impl_->options;
  if (!o.tls_certificate.empty() || !o.tls_key.empty()) {
    if (o.tls_certificate.empty() || o.tls_key.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tls_certificate, tls_key: give both files, or neither");
    }
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1);
    beast::error_code ec;
    impl_->tls->use_certificate_chain_file(o.tls_certificate, ec);
    if (ec) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tls_certificate: cannot load " + o.tls_certificate + ": " + ec.message());
    }
    impl_->tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tls_key: cannot load " + o.tls_key + ": " + ec.message());
    }
  }
  beast::error_code ec;
  const auto address = net::ip::make_address(o.address, ec);
  if (ec) throw Error(ErrorCode::kInvalidArgument, "address: not an IP address: " + o.address);
  const tcp::endpoint endpoint(address, o.port);
  const std::string where = o.address + ":" + std::to_string(o.port);
  auto& acc = impl_->acceptor.emplace(impl_->io);
  if (acc.open(endpoint.protocol(), ec); ec)
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  acc.set_option(net::socket_base::reuse_address(true), ec);
  if (acc.bind(endpoint, ec); ec)
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  if (acc.listen(net::socket_base::max_listen_connections, ec); ec)
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  impl_->bound_port = acc.local_endpoint().port();
  impl_->heavy.emplace(static_cast<std::size_t>(std::max(1, o.heavy_threads)));
  FairQueue::Options fair;
  fair.capacity = static_cast<std::size_t>(std::max(1, o.heavy_queue));
  impl_->heavy_queue.emplace(fair);
  impl_->waits.emplace(static_cast<std::size_t>(std::max(1, o.wait_threads)));
  impl_->work.emplace(impl_->io.get_executor());
  impl_->accept();
  for (int i = 0; i < std::max(1, o.threads); ++i) {
    impl_->threads.emplace_back([impl = impl_] { impl->io.run(); });
  }
}

std::uint16_t HttpServer::port() const noexcept { return impl_->bound_port; }

int HttpServer::connections() const noexcept { return impl_->connections.load(); }

void HttpServer::shutdown(std::chrono::milliseconds grace) {
  impl_->stopping.store(true);
  net::post(impl_->io, [impl = impl_] {
    beast::error_code ignored;
    if (impl->acceptor) impl->acceptor->close(ignored);
  });
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard lock(impl_->sessions_mu);
    open.assign(impl_->sessions.begin(), impl_->sessions.end());
  }
  for (auto& s : open) s->close_when_idle();
  open.clear();
  {
    std::unique_lock lock(impl_->sessions_mu);
    impl_->drained.wait_for(lock, grace, [&] { return impl_->sessions.empty(); });
    open.assign(impl_->sessions.begin(), impl_->sessions.end());
  }
  for (auto& s : open) s->close_now();
  open.clear();
  if (impl_->heavy) impl_->heavy->join();
  if (impl_->waits) impl_->waits->join();
  {
    std::unique_lock lock(impl_->sessions_mu);
    impl_->drained.wait_for(lock, std::chrono::seconds(2), [&] { return impl_->sessions.empty(); });
  }
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace devcycle::server
