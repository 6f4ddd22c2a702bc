// TLS and mutual TLS on the gRPC port with certificates made by openssl for each test: who may
// connect, who may report load, and certificate rotation by replacing the files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "client/allot_client.h"
#include "tests/integration/test_server.h"

namespace allot {
namespace {

using testing::DefaultConfigWith;
using testing::TestServer;

// A throwaway PKI: a CA, a server certificate for localhost and 127.0.0.1, and client
// certificates with the identity as their subject alternative name.
class Pki {
 public:
  Pki() {
    char tmpl[] = "/tmp/allot-pki-XXXXXX";
    dir_ = mkdtemp(tmpl);
    MakeCa("ca");
    Issue("ca", "server", "DNS:localhost,IP:127.0.0.1");
  }
  ~Pki() { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void MakeCa(const std::string& ca) const {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=" +
        ca + " -keyout " + Path(ca + ".key") + " -out " + Path(ca + ".pem"));
  }
  // `name`.pem and `name`.key, signed by `ca`, with `san` as subjectAltName.
  void Issue(const std::string& ca, const std::string& name, const std::string& san) const {
    std::ofstream(Path(name + ".ext")) << "subjectAltName=" << san << "\n";
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
        " -keyout " + Path(name + ".key") + " -out " + Path(name + ".csr"));
    Run("openssl x509 -req -days 2 -in " + Path(name + ".csr") + " -CA " + Path(ca + ".pem") +
        " -CAkey " + Path(ca + ".key") + " -CAcreateserial -extfile " + Path(name + ".ext") +
        " -out " + Path(name + ".pem"));
  }

 private:
  static void Run(const std::string& command) {
    ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
  }
  std::string dir_;
};

std::string TlsConfig(const Pki& pki, bool mutual, const std::string& identities = "") {
  std::string tls = "  tls:\n    cert_file: " + pki.Path("server.pem") +
                    "\n    key_file: " + pki.Path("server.key") + "\n    refresh_s: 1\n";
  if (mutual) tls += "    client_ca_file: " + pki.Path("ca.pem") + "\n";
  if (!identities.empty()) tls += "    reporter_identities: " + identities + "\n";
  return DefaultConfigWith("  reload_poll_s:", tls + "  reload_poll_s:");
}

std::unique_ptr<v1::Allocator::Stub> Stub(const TestServer& server, const ClientTls& tls) {
  return v1::Allocator::NewStub(MakeChannel(server.target(), tls));
}

bool Reachable(v1::Allocator::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetControlStateRequest request;
  v1::ControlState state;
  return stub.GetControlState(&context, request, &state).ok();
}

grpc::Status Report(v1::Allocator::Stub& stub, const std::string& reporter) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::LoadReport report;
  report.set_module("rank");
  report.set_reporter(reporter);
  report.set_cpu_utilization(0.5);
  report.set_qps(1000);
  v1::ReportLoadResponse response;
  return stub.ReportLoad(&context, report, &response);
}

TEST(TlsTest, TlsServesTlsClientsAndRefusesPlaintext) {
  Pki pki;
  TestServer server(TlsConfig(pki, /*mutual=*/false));
  EXPECT_TRUE(Reachable(*Stub(server, {pki.Path("ca.pem"), "", "", "localhost"})));
  EXPECT_FALSE(Reachable(*server.stub())) << "a plaintext client must not get through";
}

TEST(TlsTest, MutualTlsNeedsACertificateAndReportLoadAnAllowedIdentity) {
  Pki pki;
  pki.Issue("ca", "pod-a", "DNS:pod-a");
  pki.Issue("ca", "intruder", "DNS:intruder");
  TestServer server(TlsConfig(pki, /*mutual=*/true, "[pod-a]"));
  const ClientTls anonymous{pki.Path("ca.pem"), "", "", "localhost"};
  EXPECT_FALSE(Reachable(*Stub(server, anonymous))) << "mutual TLS: no certificate, no call";

  const auto pod_a =
      Stub(server, {pki.Path("ca.pem"), pki.Path("pod-a.pem"), pki.Path("pod-a.key"), "localhost"});
  const auto intruder = Stub(server, {pki.Path("ca.pem"), pki.Path("intruder.pem"),
                                      pki.Path("intruder.key"), "localhost"});
  EXPECT_TRUE(Reachable(*intruder)) << "any valid certificate may allocate and read state";
  EXPECT_TRUE(Report(*pod_a, "replica-1").ok());
  // The intruder's self-declared name does not matter: its certificate is not allowed.
  const grpc::Status refused = Report(*intruder, "replica-1");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("server.tls.reporter_identities"), std::string::npos);
  EXPECT_NE(server.ScrapeMetrics().find("allot_load_reports_total{outcome=\"not_allowed\"} 1"),
            std::string::npos);
}

TEST(TlsTest, ReplacedCertificateFilesAreServedWithoutARestart) {
  Pki pki;
  pki.MakeCa("ca2");
  TestServer server(TlsConfig(pki, /*mutual=*/false));
  const ClientTls trusts_ca2{pki.Path("ca2.pem"), "", "", "localhost"};
  EXPECT_FALSE(Reachable(*Stub(server, trusts_ca2)));
  // Rotate: a certificate from the second CA replaces the served one, file by file (rename).
  pki.Issue("ca2", "server2", "DNS:localhost");
  std::filesystem::rename(pki.Path("server2.key"), pki.Path("server.key"));
  std::filesystem::rename(pki.Path("server2.pem"), pki.Path("server.pem"));
  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {  // gRPC's watcher re-reads every refresh_s (1 s)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rotated = Reachable(*Stub(server, trusts_ca2));  // a new channel: a new handshake
  }
  EXPECT_TRUE(rotated);
}

TEST(TlsTest, BadTlsSettingsFailTheStartNamingTheKey) {
  Pki pki;
  std::string yaml = TlsConfig(pki, false);
  yaml.replace(yaml.find(pki.Path("server.pem")), pki.Path("server.pem").size(),
               pki.Path("missing.pem"));
  try {
    TestServer server(yaml);
    FAIL() << "started with a missing certificate file";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("server.tls.cert_file"), std::string::npos) << e.what();
  }
  try {
    TestServer server(DefaultConfigWith("  reload_poll_s:",
                                        "  tls: {reporter_identities: [a]}\n  reload_poll_s:"));
    FAIL() << "identities without mutual TLS were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("server.tls.reporter_identities"), std::string::npos);
  }
}

}  // namespace
}  // namespace allot
