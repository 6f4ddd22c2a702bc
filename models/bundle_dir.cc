// Listing bundle directories needs only the filesystem: kept apart from the LibTorch loader, so
// the server's bundle watcher can be built (and run under ThreadSanitizer) without LibTorch.
#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "models/bundle.h"

namespace allot::models {

std::vector<std::string> ListBundles(const std::string& models_dir) {
  std::vector<std::pair<std::string, std::string>> found;  // (version, dir)
  std::error_code ec;
  if (!std::filesystem::is_directory(models_dir, ec)) return {};
  for (const auto& entry : std::filesystem::directory_iterator(models_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(".tmp-", 0) == 0) continue;
    if (!std::filesystem::exists(entry.path() / kManifestFile)) continue;
    found.emplace_back(name, entry.path().string());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> dirs;
  for (auto& f : found) dirs.push_back(std::move(f.second));
  return dirs;
}

}  // namespace allot::models
