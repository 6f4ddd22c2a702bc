// gRPC's TLS credentials with its file watcher, so certificate rotation needs no code of ours.
#include "server/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace allot {
namespace {

void CheckPemFile(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(key + ": cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos)
    throw std::runtime_error(key + ": '" + path + "' holds no PEM block");
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsConfig& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  CheckPemFile(tls.cert_file, "server.tls.cert_file");
  CheckPemFile(tls.key_file, "server.tls.key_file");
  const bool mutual = !tls.client_ca_file.empty();
  if (mutual) CheckPemFile(tls.client_ca_file, "server.tls.client_ca_file");
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, static_cast<unsigned>(tls.refresh_s));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::vector<std::string> PeerIdentities(const grpc::ServerContextBase& context) {
  std::vector<std::string> out;
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return out;
  for (const grpc::string_ref& id : auth->GetPeerIdentity()) out.emplace_back(id.data(), id.size());
  return out;
}

bool MayReport(const TlsConfig& tls, const grpc::ServerContextBase& context) {
  if (tls.reporter_identities.empty()) return true;
  const std::vector<std::string> identities = PeerIdentities(context);
  return std::any_of(identities.begin(), identities.end(), [&](const std::string& id) {
    return std::find(tls.reporter_identities.begin(), tls.reporter_identities.end(), id) !=
           tls.reporter_identities.end();
  });
}

}  // namespace allot
