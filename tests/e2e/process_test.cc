// End to end through the real binaries: start-up, bad config, SIGHUP reload, SIGTERM drain, bench.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "client/allot_client.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace allot {
namespace {

struct Output {
  int exit_code = -1;
  std::string text;
};

// Runs a command to completion, capturing stdout and stderr together.
Output RunCommand(const std::string& command) {
  Output out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) out.text.append(buf, n);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// A fresh directory under /tmp, removed with everything in it when the test ends, passed or not.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/allot-e2e-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string DefaultConfigWith(const std::string& from, const std::string& to) {
  std::ifstream in(std::string(ALLOT_SOURCE_DIR) + "/config/allot.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  return yaml;
}

// allot-server as a child process; learns its port from the start-up log line.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      std::vector<char*> argv = {const_cast<char*>(ALLOT_SERVER_BIN)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(ALLOT_SERVER_BIN, argv.data());
      _exit(127);
    }
    close(fds[1]);
    log_ = fdopen(fds[0], "r");
    const std::regex listening(R"(listening on port (\d+))");
    char line[4096];
    while (fgets(line, sizeof(line), log_)) {
      captured_ += line;
      std::cmatch m;
      if (std::regex_search(line, m, listening)) {
        port_ = std::stoi(m[1]);
        break;
      }
    }
    // Keep draining the log so the child never blocks on a full pipe.
    reader_ = std::thread([this] {
      char buf[4096];
      while (fgets(buf, sizeof(buf), log_)) {
        std::lock_guard<std::mutex> lock(mu_);
        captured_ += buf;
      }
    });
  }

  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
    if (log_) fclose(log_);
  }

  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  void Signal(int sig) const { kill(pid_, sig); }
  int WaitExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string log() {
    std::lock_guard<std::mutex> lock(mu_);
    return captured_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int port_ = 0;
  FILE* log_ = nullptr;
  std::thread reader_;
  std::mutex mu_;
  std::string captured_;
};

std::string ConfigVersion(const std::shared_ptr<grpc::Channel>& channel) {
  AllotClient client(channel);
  return client.LoadSchema().ok() ? client.schema().config_version() : "";
}

bool Ready(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("readiness");
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response).ok() &&
         response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

TEST(ProcessTest, BadConfigExitsNonZeroNamingTheKey) {
  const TempDir temp;
  const std::string& dir = temp.path();
  std::ofstream(dir + "/bad.yaml") << DefaultConfigWith("alpha: 0.4", "alpha: 1.4");
  const Output out = RunCommand(std::string(ALLOT_SERVER_BIN) + " --config " + dir + "/bad.yaml");
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_NE(out.text.find("controller.mpc.alpha: must be in (0, 1]"), std::string::npos)
      << out.text;
  const Output missing =
      RunCommand(std::string(ALLOT_SERVER_BIN) + " --config " + dir + "/none.yaml");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.text.find("cannot read"), std::string::npos) << missing.text;
  const Output flag = RunCommand(std::string(ALLOT_SERVER_BIN) + " --bogus");
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_NE(flag.text.find("unknown argument '--bogus'"), std::string::npos);
}

// The README's worked example: recall's channels i2i+hot with elastic recall on is index 9.
TEST(ProcessTest, JointActionsListsEveryIndexWithItsChoices) {
  const Output out = RunCommand(std::string(ALLOT_SERVER_BIN) + " --joint-actions recall");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_NE(out.text.find("\n9\tchannels=i2i+hot elastic_recall=on\n"), std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("\n61\tchannels=i2i+u2i_dnn+hot+graph+semantic elastic_recall=on\n"),
            std::string::npos);
  EXPECT_EQ(out.text.find("\n62\t"), std::string::npos);
  const Output rank = RunCommand(std::string(ALLOT_SERVER_BIN) + " --joint-actions rank");
  EXPECT_NE(rank.text.find("\n7\tqueue_length=400 heavy_model=on"), std::string::npos) << rank.text;
  const Output unknown = RunCommand(std::string(ALLOT_SERVER_BIN) + " --joint-actions nobody");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.text.find("no agent 'nobody'"), std::string::npos) << unknown.text;
}

TEST(ProcessTest, CheckConfigAcceptsTheShippedConfig) {
  const Output out = RunCommand(std::string(ALLOT_SERVER_BIN) + " --check-config --config " +
                                ALLOT_SOURCE_DIR + "/config/allot.yaml");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_NE(out.text.find("is valid"), std::string::npos);
}

TEST(ProcessTest, ServesTheEmbeddedDefaultWithoutAConfigFile) {
  ServerProcess server({"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_GT(server.port(), 0) << server.log();
  const auto channel = grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  EXPECT_TRUE(Ready(channel));
  const Output embedded = RunCommand(std::string(ALLOT_SERVER_BIN) + " --check-config");
  EXPECT_NE(embedded.text.find(ConfigVersion(channel)), std::string::npos) << embedded.text;
  server.Signal(SIGINT);
  EXPECT_EQ(server.WaitExit(), 0);
}

TEST(ProcessTest, SighupReloadsAndSigtermDrainsWithoutFailingCalls) {
  const TempDir temp;
  const std::string& dir = temp.path();
  const std::string config = dir + "/allot.yaml";
  // No file watching here: only SIGHUP may trigger the reload.
  std::string yaml = DefaultConfigWith("reload_poll_s: 2.0", "reload_poll_s: 0");
  yaml.replace(yaml.find("drain_delay_s: 0.0"), 18, "drain_delay_s: 0.5");
  std::ofstream(config) << yaml;
  ServerProcess server(
      {"--config", config, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_GT(server.port(), 0) << server.log();
  const auto channel = grpc::CreateChannel(server.target(), grpc::InsecureChannelCredentials());
  const std::string before = ConfigVersion(channel);
  ASSERT_FALSE(before.empty());

  std::ofstream(config) << yaml << "\n# edited\n";
  server.Signal(SIGHUP);
  std::string after = before;
  for (int i = 0; i < 200 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    after = ConfigVersion(channel);
  }
  EXPECT_NE(after, before) << server.log();

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      AllotClient client(channel);
      v1::AllocateRequest request;
      request.set_agent("recall");
      for (int i = 0; i < 8; ++i) request.add_features(0.1f * i);
      while (!stop.load()) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        v1::AllocateResponse response;
        (client.stub().Allocate(&context, request, &response).ok() ? ok : failed)++;
      }
    });
  }
  while (ok.load() < 300) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.Signal(SIGTERM);
  while (Ready(channel)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(server.WaitExit(), 0) << server.log();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_NE(server.log().find("shutdown complete"), std::string::npos);
}

TEST(ProcessTest, BenchMeasuresAllocateAgainstHealth) {
  ServerProcess server({"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_GT(server.port(), 0);
  const Output out = RunCommand(std::string(ALLOT_BENCH_BIN) + " --target " + server.target() +
                                " --duration 0.5 --warmup 0.1 --rounds 1 --concurrency 4");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_NE(out.text.find("ratio="), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("p99.9="), std::string::npos) << out.text;
  const Output open = RunCommand(
      std::string(ALLOT_BENCH_BIN) + " --target " + server.target() +
      " --method allocate --mode open --rate 500 --duration 0.5 --warmup 0.1 --rounds 1");
  EXPECT_EQ(open.exit_code, 0) << open.text;
  EXPECT_NE(open.text.find("requests=250 "), std::string::npos) << open.text;
  const Output bad = RunCommand(std::string(ALLOT_BENCH_BIN) + " --target " + server.target() +
                                " --mode sideways");
  EXPECT_EQ(bad.exit_code, 2);
}

// allot-cli explain prints every option as a table, the chosen one starred, and the demo ends by
// explaining the lowest- and highest-value users' decisions.
TEST(ProcessTest, CliExplainsADecisionAndTheDemoShowsWhy) {
  // A limit this test cannot reach however slowly it runs (the limit has its own tests).
  const TempDir temp;
  const std::string config = temp.path() + "/allot.yaml";
  std::ofstream(config) << DefaultConfigWith("explain_per_caller_per_s: 2.0",
                                             "explain_per_caller_per_s: 1000");
  ServerProcess server(
      {"--config", config, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_GT(server.port(), 0);
  const std::string cli = std::string(ALLOT_CLI_BIN) + " --target " + server.target();
  const Output explain = RunCommand(cli + " explain rank user_hist_value_log=2.2 ctr_7d=0.08");
  EXPECT_EQ(explain.exit_code, 0) << explain.text;
  EXPECT_NE(explain.text.find("cost x compute_price"), std::string::npos) << explain.text;
  // The analytic model has no actor: the priced argmax chose.
  EXPECT_NE(explain.text.find("chosen by=rule"), std::string::npos) << explain.text;
  // rank has 8 joint actions: a header line, 8 rows; exactly one starred.
  const std::regex row(
      R"(\n([* ]) +\d+ queue_length=\d+ heavy_model=(on|off) +[-0-9.]+ +[-0-9.]+  rank )");
  int rows = 0, starred = 0;
  for (std::sregex_iterator it(explain.text.begin(), explain.text.end(), row), end; it != end;
       ++it) {
    ++rows;
    starred += (*it)[1] == "*";
  }
  EXPECT_EQ(rows, 8) << explain.text;
  EXPECT_EQ(starred, 1) << explain.text;
  const Output unknown = RunCommand(cli + " explain rank no_such_feature=1");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.text;
  EXPECT_NE(unknown.text.find("no_such_feature"), std::string::npos) << unknown.text;
  const Output demo = RunCommand(cli + " demo");
  EXPECT_EQ(demo.exit_code, 0) << demo.text;
  EXPECT_NE(demo.text.find("== why: agent rank, top spender user"), std::string::npos) << demo.text;
}

}  // namespace
}  // namespace allot
