#include "bench/progress.hpp"

#include <fmt/format.h>

namespace eta::bench {

bool parse_progress_mode(std::string_view text, ProgressMode& out) {
  if (text == "auto") {
    out = ProgressMode::kAuto;
  } else if (text == "tty") {
    out = ProgressMode::kTty;
  } else if (text == "lines") {
    out = ProgressMode::kLines;
  } else if (text == "off") {
    out = ProgressMode::kOff;
  } else {
    return false;
  }
  return true;
}

ProgressStyle progress_style(ProgressMode mode, bool stderr_is_tty) {
  if (mode == ProgressMode::kAuto) mode = stderr_is_tty ? ProgressMode::kTty : ProgressMode::kLines;
  ProgressStyle s;
  switch (mode) {
    case ProgressMode::kTty:
      s.carriage_return = true;
      s.interval_s = 0.5;
      break;
    case ProgressMode::kLines:
      s.carriage_return = false;
      s.interval_s = 5.0;
      break;
    default:
      s.enabled = false;
      break;
  }
  return s;
}

std::string format_progress(const ProgressCounts& c, double time_scale) {
  const double pct =
      c.total > 0 ? 100.0 * static_cast<double>(c.sent) / static_cast<double>(c.total) : 100.0;
  std::string line = fmt::format(
      "bench {:7.1f} s  sent {}/{} ({:.0f}%)  done {}  in flight {}  errors {}  max send "
      "lateness {:.2f} ms (wall)",
      c.elapsed_s, c.sent, c.total, pct, c.finished, c.in_flight, c.errors,
      c.lateness_max_s * 1000.0);
  if (time_scale != 1.0) line += fmt::format("  sim {:.1f} s", c.elapsed_s * time_scale);
  return line;
}

std::string progress_output(const ProgressCounts& counts, double time_scale,
                            const ProgressStyle& style, bool final) {
  std::string line = format_progress(counts, time_scale);
  if (!style.carriage_return) return line + "\n";
  std::string out = "\r" + line + "\x1b[K";
  if (final) out += "\n";
  return out;
}

}  // namespace eta::bench
