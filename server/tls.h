// Transport security of the gRPC port: credentials built from server.tls, and who a caller is.
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>
#include <vector>

#include "server/server_config.h"

namespace allot {

// Plaintext without server.tls.cert_file; else TLS (mutual with client_ca_file) whose files
// gRPC re-reads every refresh_s. Throws std::runtime_error naming the key of a file that cannot
// be read or holds no PEM block, so a typo fails the start instead of every handshake.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsConfig& tls);

// The caller's authenticated identities: its certificate's subject alternative names, or its
// common name when it has none. Empty without a verified client certificate.
std::vector<std::string> PeerIdentities(const grpc::ServerContextBase& context);

// Whether a ReportLoad caller may report: always without an identity allow-list, in which case
// the caller's identities are not even looked up.
bool MayReport(const TlsConfig& tls, const grpc::ServerContextBase& context);

}  // namespace allot
