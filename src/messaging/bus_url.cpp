#include "messaging/bus_url.h"

#include "common/url.h"

namespace devcycle::internal {

BusKind check_bus_url(const std::string& url, std::string_view label) {
  const auto parsed = parse_url(url, label);
  if (parsed.scheme == "inproc") {
    require_bare(parsed, url, label);
    return BusKind::kInproc;
  }
  if (parsed.scheme == "kafka") {
    if (parsed.hosts.empty())
      fail_setting(label, url, "names no broker (kafka://host:port[,host:port...])");
    return BusKind::kKafka;
  }
  fail_setting(
      label, url,
      "has an unknown scheme \"" + parsed.scheme + "\" (expected inproc:// or kafka://host:port)");
}

}  // namespace devcycle::internal
