// Loading and warming happen on the watcher's thread; requests keep using the old scorer until
// the installer swaps the snapshot.
#include "server/bundle_watcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "models/bundle.h"

namespace allot {

void WarmUp(const ActionScorer& scorer, const AllotConfig& config, int rounds) {
  AgentScores scores;
  std::vector<double> module_lambda;
  for (const ModuleConfig& m : config.modules) module_lambda.push_back(m.initial_lambda);
  for (size_t a = 0; a < config.agents.size(); ++a) {
    std::vector<float> x(config.agents[a].features.size(), 0.0f);
    for (int i = 0; i < rounds; ++i) {
      x[0] = 0.1f * static_cast<float>(i);
      if (!scorer.Score(a, x, &scores))
        throw std::runtime_error("warm-up: agent " + config.agents[a].name + " failed");
      // A bundle with actors (maddpg) must propose one of the agent's joint actions.
      size_t joint = 0;
      if (scorer.Propose(a, x, scores, module_lambda, &joint) && joint >= scores.value.size())
        throw std::runtime_error("warm-up: agent " + config.agents[a].name +
                                 "'s actor proposed no joint action of its space");
    }
  }
}

namespace {

// Changes whenever a file of the bundle is written, added or removed.
std::string FilesFingerprint(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code size_ec, time_ec;
    const auto size = entry.file_size(size_ec);
    const auto time = entry.last_write_time(time_ec);
    files.push_back(entry.path().filename().string() + ":" + std::to_string(size_ec ? 0 : size) +
                    ":" + std::to_string(time_ec ? 0 : time.time_since_epoch().count()));
  }
  std::sort(files.begin(), files.end());
  std::string out;
  for (const std::string& f : files) out += f + "\n";
  return out;
}

}  // namespace

BundleWatcher::BundleWatcher(Loader load, Installer install, Reporter report,
                             DirReporter dir_report)
    : load_(std::move(load)),
      install_(std::move(install)),
      report_(std::move(report)),
      dir_report_(std::move(dir_report)) {}

BundleWatcher::~BundleWatcher() { Stop(); }

bool BundleWatcher::PollOnce(const AllotConfig& config) {
  std::lock_guard<std::mutex> poll(poll_mu_);
  std::error_code ec;
  const bool exists = std::filesystem::is_directory(config.models.dir, ec);
  if (dir_exists_ != exists) {
    dir_exists_ = exists;
    if (dir_report_) dir_report_(config.models.dir, exists);
  }
  for (const std::string& dir : models::ListBundles(config.models.dir)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dir == current_) return false;  // the newest valid bundle is already serving
    }
    const Attempt attempt{FilesFingerprint(dir), config.version};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto failed = failed_.find(dir);
      if (failed != failed_.end() && failed->second == attempt) continue;  // try older ones
    }
    try {
      std::shared_ptr<const ActionScorer> scorer = load_(dir, config);
      WarmUp(*scorer, config);
      install_(scorer, dir);
      {
        std::lock_guard<std::mutex> lock(mu_);
        current_ = dir;
        failed_.erase(dir);
      }
      report_(true, dir, "");
      return true;
    } catch (const std::exception& e) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        failed_[dir] = attempt;
      }
      report_(false, dir, e.what());
    }
  }
  return false;
}

void BundleWatcher::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  current_.clear();
  failed_.clear();
}

void BundleWatcher::Start(std::function<std::shared_ptr<const AllotConfig>()> config) {
  // The caller has just polled, so the thread waits first. A poll_s of 0 turns polling off
  // until a reload sets it again: the thread then looks once a second for that change.
  thread_ = std::thread([this, config] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      const double poll_s = config()->models.poll_s;
      cv_.wait_for(lock, std::chrono::duration<double>(poll_s > 0 ? poll_s : 1.0),
                   [this] { return stopping_; });
      const std::shared_ptr<const AllotConfig> c = config();
      if (stopping_ || c->models.poll_s <= 0) continue;
      lock.unlock();
      PollOnce(*c);
      lock.lock();
    }
  });
}

void BundleWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string BundleWatcher::current_dir() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace allot
