#include "http_client.h"

#include <strings.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <optional>

#include "cli.h"

namespace devcycle::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

struct HttpClient::Impl {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  bool https = false;
  std::string host, port;
  std::chrono::seconds timeout;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  bool open() const { return https ? secure.has_value() : plain.has_value(); }
  beast::tcp_stream& lowest() { return https ? beast::get_lowest_layer(*secure) : *plain; }

  void connect() {
    tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(host, port);
    buffer.clear();
    if (https) {
      secure.emplace(io, tls);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"  // OpenSSL's macro
      const bool named = SSL_set_tlsext_host_name(secure->native_handle(), host.c_str());
#pragma GCC diagnostic pop
      if (!named) throw CliError(kUnavailable, "TLS: cannot set the server name " + host);
      secure->set_verify_callback(asio::ssl::host_name_verification(host));
      beast::get_lowest_layer(*secure).expires_after(timeout);
      beast::get_lowest_layer(*secure).connect(endpoints);
      secure->handshake(asio::ssl::stream_base::client);
    } else {
      plain.emplace(io);
      plain->expires_after(timeout);
      plain->connect(endpoints);
    }
  }

  void close() {
    beast::error_code ignored;
    if (plain) plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
    plain.reset();
    secure.reset();
  }

  template <class Stream>
  ClientResponse exchange(Stream& stream, http::request<http::string_body>& req) {
    http::write(stream, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buffer, parser);
    auto res = parser.release();
    ClientResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res)
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    if (!res.keep_alive()) close();
    return out;
  }
};

HttpClient::HttpClient(const std::string& base_url, std::chrono::seconds timeout)
    : base_url_(base_url), impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  std::string rest;
  if (base_url.starts_with("http://")) {
    rest = base_url.substr(7);
  } else if (base_url.starts_with("https://")) {
    rest = base_url.substr(8);
    impl_->https = true;
  } else {
    throw CliError(kUsage, "server: \"" + base_url + "\" is not an http:// or https:// URL");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos)
    throw CliError(kUsage, "server: \"" + base_url + "\" must be scheme://host[:port]");
  const auto colon = rest.rfind(':');
  const bool bracketed = rest.front() == '[';
  if (colon != std::string::npos && (!bracketed || rest[colon - 1] == ']')) {
    impl_->host = rest.substr(0, colon);
    impl_->port = rest.substr(colon + 1);
  } else {
    impl_->host = rest;
    impl_->port = impl_->https ? "443" : "80";
  }
  if (bracketed && impl_->host.size() > 2)
    impl_->host = impl_->host.substr(1, impl_->host.size() - 2);
  if (impl_->host.empty() || impl_->port.empty() ||
      impl_->port.find_first_not_of("0123456789") != std::string::npos)
    throw CliError(kUsage, "server: \"" + base_url + "\" must be scheme://host[:port]");
  if (impl_->https) {
    impl_->tls.set_default_verify_paths();
    impl_->tls.set_verify_mode(asio::ssl::verify_peer);
  }
}

HttpClient::~HttpClient() = default;

ClientResponse HttpClient::request(
    std::string_view method, std::string_view target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> req;
  req.method(http::string_to_verb(method));
  req.target(target);
  req.version(11);
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "devcycle-cli");
  req.set(http::field::accept, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  // One retry on a fresh connection: the server may have closed an idle one.
  for (int attempt = 0;; ++attempt) {
    const bool reused = impl_->open();
    try {
      if (!reused) impl_->connect();
      impl_->lowest().expires_after(impl_->timeout);
      return impl_->https ? impl_->exchange(*impl_->secure, req)
                          : impl_->exchange(*impl_->plain, req);
    } catch (const CliError&) {
      throw;
    } catch (const std::exception& e) {
      impl_->close();
      if (attempt == 0 && reused) continue;
      throw CliError(kUnavailable, "cannot reach the server at " + base_url_ + ": " + e.what());
    }
  }
}

}  // namespace devcycle::cli
