// Loading and warming happen on the watcher's thread; requests keep using the old scorer until
// the installer swaps the snapshot.
#include "server/bundle_watcher.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "models/bundle.h"

namespace allot {

void WarmUp(const ActionScorer& scorer, const AllotConfig& config, int rounds) {
  AgentScores scores;
  for (size_t a = 0; a < config.agents.size(); ++a) {
    std::vector<float> x(config.agents[a].features.size(), 0.0f);
    for (int i = 0; i < rounds; ++i) {
      x[0] = 0.1f * static_cast<float>(i);
      if (!scorer.Score(a, x, &scores))
        throw std::runtime_error("warm-up: agent " + config.agents[a].name + " failed");
    }
  }
}

BundleWatcher::BundleWatcher(Loader load, Installer install, Reporter report)
    : load_(std::move(load)), install_(std::move(install)), report_(std::move(report)) {}

BundleWatcher::~BundleWatcher() { Stop(); }

bool BundleWatcher::PollOnce(const AllotConfig& config) {
  std::lock_guard<std::mutex> poll(poll_mu_);
  for (const std::string& dir : models::ListBundles(config.models.dir)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dir == current_) return false;  // the newest valid bundle is already serving
      if (failed_.count(dir)) continue;   // a newer bundle failed: fall back to older ones
    }
    try {
      std::shared_ptr<const ActionScorer> scorer = load_(dir, config);
      WarmUp(*scorer, config);
      install_(scorer, dir);
      {
        std::lock_guard<std::mutex> lock(mu_);
        current_ = dir;
      }
      report_(true, dir, "");
      return true;
    } catch (const std::exception& e) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        failed_.insert(dir);
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
  thread_ = std::thread([this, config] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      const std::shared_ptr<const AllotConfig> c = config();
      lock.unlock();
      PollOnce(*c);
      lock.lock();
      if (c->models.poll_s <= 0) break;
      cv_.wait_for(lock, std::chrono::duration<double>(c->models.poll_s),
                   [this] { return stopping_; });
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
