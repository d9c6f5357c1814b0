// The live progress line of `eta bench` on stderr (pure formatting; the load generator calls it).
// On a terminal the line is rewritten in place ("\r", cleared to the end) twice a second; when
// stderr is a file or a pipe, one full line is written every few seconds, so logs stay readable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace eta::bench {

// The live counters the progress line shows.
struct ProgressCounts {
  int64_t total = 0;          // planned requests
  int64_t sent = 0;           // sent so far
  int64_t finished = 0;       // completed (successfully or not)
  int64_t errors = 0;         // completed with an error
  int64_t in_flight = 0;      // sent, not completed
  double elapsed_s = 0;       // wall seconds since the start
  double lateness_max_s = 0;  // worst send lateness so far (wall seconds)
};

enum class ProgressMode {
  kAuto,   // kTty when stderr is a terminal, else kLines
  kTty,    // "\r"-updated line
  kLines,  // one line every few seconds
  kOff,
};
// "auto" | "tty" | "lines" | "off"; false if unknown.
bool parse_progress_mode(std::string_view text, ProgressMode& out);

struct ProgressStyle {
  bool enabled = true;
  bool carriage_return = false;  // rewrite one line in place
  double interval_s = 5.0;       // seconds between updates
};
ProgressStyle progress_style(ProgressMode mode, bool stderr_is_tty);

// One progress line without line ending, e.g.
// "bench  12.3 s  sent 1200/5000 (24%)  done 1180  in flight 20  errors 0  max send lateness 0.41
// ms (wall)  sim 49.2 s" `time_scale` is the replica's: the simulated elapsed time is elapsed_s *
// time_scale (shown only when the scale is not 1).
std::string format_progress(const ProgressCounts& counts, double time_scale);

// What to write to stderr for an update: "\r" + line + "\x1b[K" in place (plus "\n" when
// `final`), or line + "\n".
std::string progress_output(const ProgressCounts& counts, double time_scale,
                            const ProgressStyle& style, bool final);

}  // namespace eta::bench
