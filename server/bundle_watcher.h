// Polls the model directory and hot-swaps the newest valid bundle: load, check against the
// config, warm up off the request path, then install; a failing bundle is logged, counted and
// skipped while the bundle in force keeps serving.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  // Told whether the configured model directory exists, at the first poll and on every change.
  using DirReporter = std::function<void(const std::string& models_dir, bool exists)>;

  BundleWatcher(Loader load, Installer install, Reporter report, DirReporter dir_report = {});
  ~BundleWatcher();

  // Checks the directory once: returns true when a new bundle was installed.
  bool PollOnce(const AllotConfig& config);
  // Forget the bundle in force (e.g. the config's schema changed) so the next poll reloads.
  void Reset();
  // Polls every models.poll_s on a thread of its own, starting one period from now.
  void Start(std::function<std::shared_ptr<const AllotConfig>()> config);
  void Stop();
  std::string current_dir() const;

 private:
  Loader load_;
  Installer install_;
  Reporter report_;
  mutable std::mutex mu_;
  // What a refused bundle was tried with: it is tried again once its files or the config change
  // (a bundle copied manifest first, a config rolled back to one the bundle matches).
  struct Attempt {
    std::string files;           // names, sizes and modification times
    std::string config_version;  // of the config it was checked against
    bool operator==(const Attempt&) const = default;
  };

  DirReporter dir_report_;
  std::string current_;                    // guarded by mu_
  std::map<std::string, Attempt> failed_;  // guarded by mu_: by bundle directory
  std::optional<bool> dir_exists_;         // guarded by poll_mu_: as last reported
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
  std::mutex poll_mu_;  // one poll at a time
};

// Scores every agent a few times so the first real request does not pay for lazy initialisation.
void WarmUp(const ActionScorer& scorer, const AllotConfig& config, int rounds = 20);

}  // namespace allot
