// spdlog set-up for the process: level and text or JSON lines on stderr.
#pragma once

#include <string>

namespace allot {

// level: trace..off; format: "text" or "json" (one object per line, message JSON-escaped).
// May be called again (a reload) to change either.
void ConfigureLogging(const std::string& level, const std::string& format);

}  // namespace allot
