// Seconds (double, as configured) to the milliseconds timers and timeouts take.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>

namespace eta {

inline std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

}  // namespace eta
