// spdlog set-up for the process: level and text or JSON lines on stderr.
#pragma once

#include <string>

namespace allot {

// level: trace..off; format: "text" or "json" (one object per line, message JSON-escaped).
void ConfigureLogging(const std::string& level, const std::string& format);

}  // namespace allot
