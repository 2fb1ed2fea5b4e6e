#include "output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace devcycle::cli {

bool color_enabled() {
  static const bool on = ::isatty(STDOUT_FILENO) == 1 && !std::getenv("NO_COLOR");
  return on;
}

bool terminal_status(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "timed_out" || status == "skipped";
}

std::string cell(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string short_time(const Json& v) {
  if (!v.is_string()) return "-";
  auto s = v.get<std::string>();
  if (s.size() >= 19 && s[10] == 'T') {
    s = s.substr(0, 19);
    s[10] = ' ';
  }
  return s;
}

std::string status_text(const std::string& status) {
  if (!color_enabled()) return status;
  const char* code = "0";
  if (status == "succeeded")
    code = "32";
  else if (status == "failed" || status == "timed_out")
    code = "31";
  else if (status == "running" || status == "online")
    code = "36";
  else if (status == "cancelled" || status == "skipped" || status == "paused")
    code = "33";
  return std::string("\033[") + code + "m" + status + "\033[0m";
}

namespace {

// Display width: escape sequences take none; UTF-8 continuation bytes none.
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\033') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++w;
  }
  return w;
}

}  // namespace

void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) widths[c] = width(headers[c]);
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < r.size() && c < widths.size(); ++c)
      widths[c] = std::max(widths[c], width(r[c]));
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < cells.size() && c < widths.size(); ++c) {
      text += cells[c];
      if (c + 1 < cells.size()) text += std::string(widths[c] - width(cells[c]) + 2, ' ');
    }
    out << text << "\n";
  };
  std::vector<std::string> upper;
  for (auto h : headers) {
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char ch) { return std::toupper(ch); });
    upper.push_back(h);
  }
  line(upper);
  for (const auto& r : rows) line(r);
}

void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    out << k << ":" << std::string(w - k.size() + 1, ' ') << v << "\n";
}

}  // namespace devcycle::cli
