// Polls the model directory and hot-swaps the newest valid bundle: load, check against the
// config, warm up off the request path, then install; a failing bundle is logged, counted and
// skipped while the bundle in force keeps serving.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "policy/config.h"
#include "policy/scorer.h"

namespace allot {

class BundleWatcher {
 public:
  using Loader = std::function<std::shared_ptr<const ActionScorer>(const std::string& dir,
                                                                   const AllotConfig&)>;
  using Installer =
      std::function<void(std::shared_ptr<const ActionScorer> scorer, const std::string& dir)>;
  using Reporter = std::function<void(bool ok, const std::string& dir, const std::string& error)>;

  BundleWatcher(Loader load, Installer install, Reporter report);
  ~BundleWatcher();

  // Checks the directory once: returns true when a new bundle was installed.
  bool PollOnce(const AllotConfig& config);
  // Forget the bundle in force (e.g. the config's schema changed) so the next poll reloads.
  void Reset();
  void Start(std::function<std::shared_ptr<const AllotConfig>()> config);
  void Stop();
  std::string current_dir() const;

 private:
  Loader load_;
  Installer install_;
  Reporter report_;
  mutable std::mutex mu_;
  std::string current_;           // guarded by mu_
  std::set<std::string> failed_;  // guarded by mu_: bundles that failed, not retried
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
  std::mutex poll_mu_;  // one poll at a time
};

// Scores every agent a few times so the first real request does not pay for lazy initialisation.
void WarmUp(const ActionScorer& scorer, const AllotConfig& config, int rounds = 20);

}  // namespace allot
