#include "devcycle/workflow/executor.h"

namespace devcycle {

ExecutorSpec ExecutorSpec::parse(std::string_view executor) {
  const auto after = [&](std::string_view prefix) {
    return std::string(executor.substr(prefix.size()));
  };
  if (executor.starts_with("inproc:")) return {Kind::kInproc, after("inproc:")};
  if (executor.starts_with("process:")) return {Kind::kProcess, after("process:")};
  if (executor.starts_with("bus:")) return {Kind::kBus, after("bus:")};
  if (executor == "remote") return {Kind::kRemote, {}};
  if (executor.starts_with("http:") || executor.starts_with("https:"))
    return {Kind::kHttp, std::string(executor)};
  return {Kind::kUnknown, {}};
}

std::string_view to_string(ExecutorSpec::Kind kind) noexcept {
  switch (kind) {
    case ExecutorSpec::Kind::kInproc:
      return "inproc";
    case ExecutorSpec::Kind::kProcess:
      return "process";
    case ExecutorSpec::Kind::kBus:
      return "bus";
    case ExecutorSpec::Kind::kRemote:
      return "remote";
    case ExecutorSpec::Kind::kHttp:
      return "http";
    case ExecutorSpec::Kind::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace devcycle
